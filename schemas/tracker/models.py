"""The tenant's own tables. They exist only in the tenant's schema (django-pgschemas'
router migrates them only there); the schema is the tenant, so no row carries an account."""

from shared.models import ContainedProject, ContainedSubtask, ContainedTask, ContainedUser


class User(ContainedUser):
    pass


class Project(ContainedProject):
    pass


class Task(ContainedTask):
    pass


class Subtask(ContainedSubtask):
    pass
