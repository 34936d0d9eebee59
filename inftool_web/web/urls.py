from django.urls import path

from . import views

app_name = "web"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("workers/", views.workers, name="workers"),
    path("iterations/new/", views.iteration_new, name="iteration-new"),
    path("iterations/<int:pk>/", views.iteration_detail, name="iteration"),
    path("iterations/<int:pk>/cancel/", views.iteration_cancel_view, name="iteration-cancel"),
    path("trajectories/<int:pk>/", views.trajectory_detail, name="trajectory"),
    path("trajectories/<int:pk>/row/", views.trajectory_row, name="trajectory-row"),
    path("trajectories/<int:pk>/card/", views.trajectory_card, name="trajectory-card"),
    path("trajectories/<int:pk>/audit/", views.audit_decide, name="audit-decide"),
    path("tools/", views.tools, name="tools"),
    path("audit/", views.audit, name="audit"),
    path("evaluations/", views.evaluations, name="evaluations"),
]
