"""Abstract models: the fields every strategy stores. Each strategy's concrete models add the
relations, which is where the strategies differ."""

from django.contrib.auth.hashers import check_password, make_password
from django.db import models
from django.utils import timezone

# A tenant's statements stop after this long unless its own limit says otherwise.
DEFAULT_STATEMENT_TIMEOUT_MS = 5000


class AbstractAccount(models.Model):
    slug = models.SlugField(max_length=63, unique=True)
    name = models.CharField(max_length=200)
    # How long one statement of this tenant's may run, in milliseconds (0: no limit). A
    # statement past it is cancelled, and its request gets the 503 page: one tenant's slow
    # query cannot hold a connection, and the workers, that the others need.
    statement_timeout = models.PositiveIntegerField(
        default=DEFAULT_STATEMENT_TIMEOUT_MS, db_default=DEFAULT_STATEMENT_TIMEOUT_MS
    )

    class Meta:
        abstract = True
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class AbstractUser(models.Model):
    email = models.EmailField()
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    password = models.CharField(max_length=128)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.email

    def set_password(self, raw_password: str) -> None:
        self.password = make_password(raw_password)

    def check_password(self, raw_password: str) -> bool:
        return check_password(raw_password, self.password)


class AbstractProject(models.Model):
    name = models.CharField(max_length=200)
    details = models.TextField(blank=True)
    # Percent of the project's subtasks that are complete, as the recompute_progress task last
    # found it (None: never computed). Derived, so neither exported nor part of the digest.
    progress = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.name


class AbstractWorkItem(models.Model):
    """What tasks and subtasks both are: a named piece of work, done or not."""

    name = models.CharField(max_length=200)
    is_complete = models.BooleanField(default=False)
    details = models.TextField(blank=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.name


class AbstractTask(AbstractWorkItem):
    class Meta:
        abstract = True


class AbstractSubtask(AbstractWorkItem):
    class Meta:
        abstract = True


# For strategies where the container (a database, a schema) is the tenant, so that no row
# carries an account: the same relations in every such strategy.
class ContainedUser(AbstractUser):
    class Meta:
        abstract = True
        constraints = [models.UniqueConstraint(fields=["email"], name="user_email_key")]


class ContainedProject(AbstractProject):
    class Meta:
        abstract = True


class ContainedTask(AbstractTask):
    # Resolved in each concrete model's app; django-stubs looks in shared's (it has none).
    project = models.ForeignKey("Project", models.CASCADE, related_name="tasks")  # type: ignore[misc, unused-ignore]

    class Meta:
        abstract = True


class ContainedSubtask(AbstractSubtask):
    task = models.ForeignKey("Task", models.CASCADE, related_name="subtasks")  # type: ignore[misc, unused-ignore]

    class Meta:
        abstract = True
        indexes = [models.Index(fields=["name", "id"], name="subtask_name")]


class Erasure(models.Model):
    """What `erasetenant` keeps of an erased tenant, in the privileged catalogue only (the
    runtime role cannot read it): that it was, and what was erased, but none of its data, not
    even its name."""

    slug = models.SlugField(max_length=63)  # not unique: a slug may be reused and erased again
    erased_at = models.DateTimeField(default=timezone.now)
    counts = models.JSONField()  # rows per table before the erase
    digest = models.CharField(max_length=71)  # shared.digest's value of the erased rows

    class Meta:
        ordering = ["-erased_at", "-id"]

    def __str__(self) -> str:
        return f"{self.slug}, erased {self.erased_at:%Y-%m-%d %H:%M:%S} UTC"
