"""The app's background task: each project's progress (the share of its subtasks that are
complete), which the list page shows beside the project. Counting a project's subtasks on
every page view would cost the page a join over all of them; the task counts once, for one
tenant, when asked (``manage.py recomputeprogress``)."""

from django.db.models import Count, Q
from django_tasks import task

from shared.strategy import get_strategy


@task()
def recompute_progress() -> int:
    """Recompute the active tenant's project progress; the number of projects updated."""
    strategy = get_strategy()
    project, subtask = strategy.model("project"), strategy.model("subtask")
    counts = {
        row["task__project"]: (row["done"], row["total"])
        for row in subtask._default_manager.values("task__project").annotate(
            total=Count("id"), done=Count("id", filter=Q(is_complete=True))
        )
    }
    projects = list(project._default_manager.only("id", "progress"))
    for each in projects:
        done, total = counts.get(each.pk, (0, 0))
        each.progress = round(100 * done / total) if total else None  # type: ignore[attr-defined]
    project._default_manager.bulk_update(projects, ["progress"])
    return len(projects)
