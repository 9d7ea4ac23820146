from django.urls import path

from bench.baseline import views

urlpatterns = [
    path("healthz", views.healthz),
    path("subtasks/", views.subtask_list, name="subtask-list"),
    path("subtasks/<int:page>/", views.subtask_list, name="subtask-page"),
]
