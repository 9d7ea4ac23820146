"""bench/probe_urls.py's URLs (the app's, and a slow page) plus views that only the contract
suite serves: a request that enqueues a task, and one that enqueues and then fails."""

from django.http import HttpRequest, JsonResponse
from django.urls import path

from bench.probe_urls import urlpatterns as probe_urlpatterns
from tests.contract import tasks


def enqueue(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"id": tasks.where_am_i.enqueue().id})


def enqueue_then_fail(request: HttpRequest) -> JsonResponse:
    tasks.where_am_i.enqueue()
    raise RuntimeError("the request fails after enqueueing")


urlpatterns = [
    path("enqueue/", enqueue),
    path("enqueue-then-fail/", enqueue_then_fail),
    *probe_urlpatterns,
]

handler500 = "shared.views.server_error"
