import hmac
import sys
from typing import TYPE_CHECKING, Any

import psycopg
from django import db
from django.conf import settings
from django.core.paginator import EmptyPage, Page, Paginator
from django.db import connection, transaction
from django.db.models import Count, QuerySet, Subquery, Value
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_safe
from django.views.defaults import server_error as server_error_page

from shared import health
from shared.db.per_transaction import shard_map_changed
from shared.middleware import TenantRequest
from shared.pages import PAGE_SIZE
from shared.strategy import get_strategy


@require_safe
def index(request: TenantRequest) -> HttpResponse:
    if request.tenant is not None:
        return redirect("subtask-list")
    if not settings.TENANCY_INDEX:
        raise Http404("There is no tenant index here: open a tenant at <slug>.<domain>.")
    return render(request, "shared/index.html", {"tenants": get_strategy().index_tenants()})


# OFFSET is a bigint: a page number past it is past the end of any list, for Paginator to say.
OFFSET_LIMIT = 2**63 - 1 - PAGE_SIZE


if TYPE_CHECKING:  # Django's Paginator is generic for the type checker only
    _Paginator = Paginator[Any]
else:
    _Paginator = Paginator


class CountingPaginator(_Paginator):
    """Reads a page and the number of rows in one statement instead of two: the count rides
    along as a scalar subquery, which PostgreSQL runs once. Only a page past the end (no rows)
    asks for the count on its own, to tell an empty list from a page number too high.

    Not ``COUNT(*) OVER ()``, which reads the same in one statement: a window over the list
    makes the server join and sort every row of it before it can return ten: 5.1 ms against
    1.8 ms for the subquery, for a tenant with 618 subtasks."""

    def page(self, number: int | str) -> Page[Any]:
        number = int(number)
        bottom = (number - 1) * self.per_page
        if number >= 1 and bottom < OFFSET_LIMIT:
            listed: QuerySet[Any] = self.object_list  # type: ignore[assignment]
            # COUNT(*) of the whole list as one value: grouped by a constant, which Django
            # leaves out of the SQL.
            count = listed.order_by().annotate(one=Value(1)).values("one")
            count = count.annotate(rows=Count("*")).values("rows")
            rows = list(
                listed.annotate(rows_in_list=Subquery(count))[bottom : bottom + self.per_page]
            )
            if rows:
                self.__dict__["count"] = rows[0].rows_in_list  # Paginator.count is cached
                return Page(rows, number, self)
        return super().page(number)


# One statement reads the page (with its count), so the request needs no transaction of its
# own: that saves BEGIN and COMMIT where the tenant needs none set (multidb); rls and schemas
# still wrap the statement in one that carries the tenant (shared.db.per_transaction).
@transaction.non_atomic_requests
@require_safe
def subtask_list(request: TenantRequest, page: int = 1) -> HttpResponse:
    if request.tenant is None:
        raise Http404("The subtask list belongs to a tenant: open it on <slug>.<domain>.")
    paginator = CountingPaginator(get_strategy().subtask_list(), PAGE_SIZE)
    page_obj: Page[Any] | None
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


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: a database that cannot be reached is a 503 (try again), not a server bug.

    Django calls this while it handles the exception, so the exception is still current.
    """
    exc = sys.exc_info()[1]
    if database_unavailable(exc):
        tenant = getattr(request, "tenant", None)
        if tenant is not None and exc is not None:
            health.record_error(tenant.slug, exc)
        context = {
            "tenant": tenant,
            "timed_out": _caused_by(exc, psycopg.errors.QueryCanceled),
            "moving": shard_map_changed(exc),
        }
        response = render(request, "503.html", context, status=503)
        response["Retry-After"] = "5"
        return response
    return server_error_page(request)


def _caused_by(exc: BaseException | None, kind: type[BaseException]) -> bool:
    while exc is not None:
        if isinstance(exc, kind):
            return True
        exc = exc.__cause__
    return False


@require_safe
def tenant_health(request: TenantRequest) -> JsonResponse:
    """Each tenant's health (shared.health), on the bare host, for a monitor that presents
    ``Authorization: Bearer <TENANCY_HEALTH_TOKEN>``; a 404 while no token is configured, as
    if there were no such page. ``?tenant=<slug>`` (repeatable) names the tenants to check;
    without it, every tenant the runtime role can list."""
    token = settings.TENANCY_HEALTH_TOKEN
    if not token or request.tenant is not None:
        raise Http404("There is no such page.")
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), token.encode()):
        return JsonResponse({"error": "a valid bearer token is needed"}, status=401)
    strategy = get_strategy()
    slugs = request.GET.getlist("tenant")
    try:
        found = health.report(strategy, privileged=False, slugs=slugs or None)
    except db.DatabaseError as exc:
        return JsonResponse(
            {
                "error": f"the tenants cannot be listed here ({health.first_line(exc)}): "
                "name them with ?tenant=<slug>"
            },
            status=400,
        )
    status = 200 if all(h.reachable for h in found) else 503
    return JsonResponse(
        {"strategy": strategy.name, "tenants": [h.as_dict() for h in found]}, status=status
    )


def database_unavailable(exc: BaseException | None) -> bool:
    # Django wraps psycopg's errors (and the pool's PoolTimeout) in its own; look down the chain.
    if shard_map_changed(exc):  # inside a longer transaction, which cannot be run again here
        return True
    while exc is not None:
        if isinstance(exc, (db.OperationalError, db.InterfaceError, psycopg.OperationalError)):
            return True
        # An error psycopg raised itself, with no SQLSTATE from the server, means the
        # conversation broke (e.g. a pooler restarting mid-COMMIT), not that the query was bad.
        if isinstance(exc, psycopg.Error) and exc.sqlstate is None:
            return True
        exc = exc.__cause__
    return False
