"""One shared set of tables; every row carries ``account_id``.

Each child also points at its parent *together with* ``account_id`` (a composite foreign key,
added in migration 0002), so the database refuses a subtask whose task belongs to another
account. Indexes lead with ``account_id``: the list page reads one account's rows, and its cost
must not grow with the number of other accounts.
"""

from django.db import models

from rls.scoping import TenantManager, TenantModel
from shared.models import (
    AbstractAccount,
    AbstractProject,
    AbstractSubtask,
    AbstractTask,
    AbstractUser,
)


class Account(AbstractAccount):
    tenant_field = "pk"

    objects = TenantManager()

    class Meta(AbstractAccount.Meta):
        base_manager_name = "objects"


class User(TenantModel, AbstractUser):
    account = models.ForeignKey(Account, models.CASCADE, related_name="users", db_index=False)

    class Meta(TenantModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["account", "email"], name="user_account_email_key"),
        ]


class Project(TenantModel, AbstractProject):
    account = models.ForeignKey(Account, models.CASCADE, related_name="projects", db_index=False)

    class Meta(TenantModel.Meta):
        constraints = [
            # The target of the composite foreign key from Task.
            models.UniqueConstraint(fields=["account", "id"], name="project_account_id_key"),
        ]


class Task(TenantModel, AbstractTask):
    account = models.ForeignKey(Account, models.CASCADE, related_name="tasks", db_index=False)
    # The single-column constraint is replaced by (account_id, project_id) in migration 0002.
    project = models.ForeignKey(
        Project, models.CASCADE, related_name="tasks", db_constraint=False, db_index=False
    )

    class Meta(TenantModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["account", "id"], name="task_account_id_key"),
        ]
        indexes = [models.Index(fields=["account", "project"], name="task_account_project")]


class Subtask(TenantModel, AbstractSubtask):
    account = models.ForeignKey(Account, models.CASCADE, related_name="subtasks", db_index=False)
    task = models.ForeignKey(
        Task, models.CASCADE, related_name="subtasks", db_constraint=False, db_index=False
    )

    class Meta(TenantModel.Meta):
        indexes = [
            # The list page: one account's subtasks by name, 10 at a time.
            models.Index(fields=["account", "name", "id"], name="subtask_account_name"),
            models.Index(fields=["account", "task"], name="subtask_account_task"),
        ]
