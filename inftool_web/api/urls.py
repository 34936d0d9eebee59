from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import IsAuthenticated

from inftool_web.core.views_auth import obtain_auth_token

from . import apis
from .docs import SwaggerDocsView
from .permissions import IsViewer

app_name = "api"

urlpatterns = [
    path("auth/token/", obtain_auth_token, name="token"),
    path("tools/", apis.ToolListApi.as_view(), name="tools"),
    path("tools/<int:pk>/", apis.ToolDetailApi.as_view(), name="tool"),
    path("personas/", apis.PersonaListApi.as_view(), name="personas"),
    path("iterations/", apis.IterationListApi.as_view(), name="iterations"),
    path("iterations/<int:pk>/", apis.IterationDetailApi.as_view(), name="iteration"),
    path("iterations/<int:pk>/cancel/", apis.IterationCancelApi.as_view(), name="iteration-cancel"),
    path("iterations/<int:pk>/card/", apis.IterationCardApi.as_view(), name="iteration-card"),
    path("trajectories/", apis.TrajectoryListApi.as_view(), name="trajectories"),
    path("trajectories/<int:pk>/", apis.TrajectoryDetailApi.as_view(), name="trajectory"),
    path("evaluations/", apis.EvaluationListApi.as_view(), name="evaluations"),
    path("exports/", apis.ExportListApi.as_view(), name="exports"),
    path("exports/<str:fmt>/", apis.ExportApi.as_view(), name="export"),
    path("schema/", SpectacularAPIView.as_view(permission_classes=[IsAuthenticated, IsViewer]), name="schema"),
    path("docs/", SwaggerDocsView.as_view(url_name="api:schema", permission_classes=[IsAuthenticated, IsViewer]), name="docs"),
    # Anything else under /api/ ending in a slash (a path whose id is not a number, a path
    # that does not exist) is a JSON 404 like the API's own, not Django's HTML page.
    re_path(r"^.*/$", apis.NotFoundApi.as_view()),
]
