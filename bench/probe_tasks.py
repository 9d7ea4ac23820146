"""The task make bench-tasks enqueues (bench/tasks_probe.py): imported once Django is set up."""

from django_tasks import task


@task()
def trivial() -> None:
    """A task that does nothing but run in its tenant: what the worker itself costs."""
