from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.urls import include, path

from inftool_web.core import model_views, views_auth
from inftool_web.core import views as core_views

# The admin's own log-in form would bypass the rate limits: send it through ours.
admin.site.login = login_required(admin.site.login)

urlpatterns = [
    path("healthz", core_views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("v1/chat/completions", model_views.chat_completions, name="v1-chat-completions"),
    path("v1/models", model_views.models, name="v1-models"),
    path("accounts/login/", views_auth.RateLimitedLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/", include("inftool_web.api.urls")),
    path("", include("inftool_web.web.urls")),
]

# Unknown URLs under /api/ and /v1/ answer JSON, like the rest of those APIs.
handler404 = "inftool_web.core.views.not_found"
