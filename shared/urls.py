from django.urls import path

from shared import views

urlpatterns = [
    path("", views.index, name="index"),
    path("subtasks/", views.subtask_list, name="subtask-list"),
    path("subtasks/<int:page>/", views.subtask_list, name="subtask-page"),
    path("healthz", views.healthz, name="healthz"),
    path("health/tenants", views.tenant_health, name="tenant-health"),
]
