"""The app's URLs plus a page whose statement runs as long as it is asked to (``/slow/?seconds=``):
what a tenant's slow report looks like to the server, for make bench-tasks and the tests of
per-tenant limits. Never part of the app's own URLs."""

from django.db.models import BooleanField
from django.db.models.expressions import RawSQL
from django.http import HttpRequest, JsonResponse
from django.urls import include, path

from shared.strategy import get_strategy


def slow(request: HttpRequest) -> JsonResponse:
    seconds = float(request.GET.get("seconds", "1"))
    subtasks = (
        get_strategy()
        .model("subtask")
        ._default_manager.filter(
            RawSQL("(SELECT true FROM pg_sleep(%s))", [seconds], output_field=BooleanField())
        )
    )
    return JsonResponse({"rows": subtasks.count()})


urlpatterns = [path("slow/", slow), path("", include("shared.urls"))]

handler500 = "shared.views.server_error"
