from typing import Any

from django.conf import settings
from django.core.paginator import Paginator
from django.db.models import F, Value
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from bench.baseline.models import Account, Subtask


def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


def subtask_list(request: HttpRequest, page: int = 1) -> HttpResponse:
    slug = request.get_host().split(".")[0]
    if settings.BASELINE == "shared":
        tenant: Any = Account.objects.filter(slug=slug).first()
        if tenant is None:
            raise Http404
        subtasks = Subtask.objects.filter(task__project__account=tenant).annotate(
            account_name=F("task__project__account__name")
        )
    else:
        if slug not in settings.DATABASES or slug == "default":
            raise Http404
        tenant = Account(slug=slug, name=settings.TENANTS[slug])
        subtasks = Subtask.objects.using(slug).annotate(account_name=Value(tenant.name))
    paginator = Paginator(subtasks.select_related("task__project").order_by("name", "id"), 10)
    page_obj = paginator.page(page)
    return render(
        request,
        "shared/subtask_list.html",
        {
            "tenant": tenant,
            "page_obj": page_obj,
            "paginator": paginator,
            "page_range": paginator.get_elided_page_range(page, on_each_side=2, on_ends=1),
        },
    )
