"""The task queue's own queries (django-tasks-db's migrations move rows as they change the
table) go through the privileged connection wherever a process has one: the runtime role may
only insert into the queue (shared/migrations/0002_task_queue_rights.py). shared.tasks and
shared.worker name their connection themselves; this router is for everything else."""

from typing import Any

from django.db import connections
from django.db.models import Model

from shared.db import OWNER_ALIAS

QUEUE_APP = "django_tasks_database"


class TaskQueueAsOwner:
    def _queue(self, model: type[Model], **hints: Any) -> str | None:
        if model._meta.app_label == QUEUE_APP and OWNER_ALIAS in connections.settings:
            return OWNER_ALIAS
        return None

    db_for_read = _queue
    db_for_write = _queue
