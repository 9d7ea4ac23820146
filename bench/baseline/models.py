"""The tracker's tables as the baseline reads them: plain models, no manager that scopes.

In the shared schema a project names its account and everything below is found through it,
as a first version would write it; a tenant's own database has no account column at all.
(A module of the baseline alone reads its settings here, at import time.)"""

from django.conf import settings
from django.db import models


class Account(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)

    class Meta:
        managed = False
        db_table = "tracker_account"

    def __str__(self) -> str:
        return self.slug


class Project(models.Model):
    name = models.CharField(max_length=200)
    if settings.BASELINE == "shared":
        account = models.ForeignKey(Account, models.DO_NOTHING)

    class Meta:
        managed = False
        db_table = "tracker_project"

    def __str__(self) -> str:
        return self.name


class Task(models.Model):
    project = models.ForeignKey(Project, models.DO_NOTHING)
    name = models.CharField(max_length=200)

    class Meta:
        managed = False
        db_table = "tracker_task"

    def __str__(self) -> str:
        return self.name


class Subtask(models.Model):
    task = models.ForeignKey(Task, models.DO_NOTHING)
    name = models.CharField(max_length=200)
    is_complete = models.BooleanField(default=False)

    class Meta:
        managed = False
        db_table = "tracker_subtask"

    def __str__(self) -> str:
        return self.name
