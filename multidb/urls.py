from django.urls import include, path

urlpatterns = [path("", include("shared.urls"))]

handler500 = "shared.views.server_error"
