from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from inftool_web.core import views as core_views
from inftool_web.core import views_auth

urlpatterns = [
    path("healthz", core_views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/login/", views_auth.RateLimitedLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
]
