"""The tenant's own tables. They exist only in tenant databases (the router sends them
there); the database itself is the tenant, so no row carries an account."""

from django.db import models

from shared.models import AbstractProject, AbstractSubtask, AbstractTask, AbstractUser


class User(AbstractUser):
    class Meta:
        constraints = [models.UniqueConstraint(fields=["email"], name="user_email_key")]


class Project(AbstractProject):
    pass


class Task(AbstractTask):
    project = models.ForeignKey(Project, models.CASCADE, related_name="tasks")


class Subtask(AbstractSubtask):
    task = models.ForeignKey(Task, models.CASCADE, related_name="subtasks")

    class Meta:
        indexes = [models.Index(fields=["name", "id"], name="subtask_name")]
