from django.core.paginator import EmptyPage, Paginator
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_safe

from shared.strategy import get_strategy

PAGE_SIZE = 10


@require_safe
def index(request: HttpRequest) -> HttpResponse:
    if request.tenant is not None:
        return redirect("subtask-list")
    return render(request, "shared/index.html", {"tenants": get_strategy().list_tenants()})


@require_safe
def subtask_list(request: HttpRequest, page: int = 1) -> HttpResponse:
    if request.tenant is None:
        raise Http404("The subtask list belongs to a tenant: open it on <slug>.<domain>.")
    paginator = Paginator(get_strategy().subtask_list(), PAGE_SIZE)
    try:
        page_obj = paginator.page(page)
    except EmptyPage:
        if page != 1:
            raise Http404(f"There is no page {page}.") from None
        page_obj = paginator.page(1) if paginator.count else None
    return render(
        request,
        "shared/subtask_list.html",
        {
            "tenant": request.tenant,
            "page_obj": page_obj,
            "paginator": paginator,
            "page_range": page_obj
            and paginator.get_elided_page_range(page_obj.number, on_each_side=2, on_ends=1),
        },
    )


@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return JsonResponse({"status": "ok", "strategy": get_strategy().name})
