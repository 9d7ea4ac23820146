"""Abstract models: the fields every strategy stores. Each strategy's concrete models add the
relations, which is where the strategies differ."""

from django.contrib.auth.hashers import check_password, make_password
from django.db import models
from django.utils import timezone


class AbstractAccount(models.Model):
    slug = models.SlugField(max_length=63, unique=True)
    name = models.CharField(max_length=200)

    class Meta:
        abstract = True
        ordering = ["slug"]

    def __str__(self):
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

    def __str__(self):
        return self.email

    def set_password(self, raw_password: str) -> None:
        self.password = make_password(raw_password)

    def check_password(self, raw_password: str) -> bool:
        return check_password(raw_password, self.password)


class AbstractProject(models.Model):
    name = models.CharField(max_length=200)
    details = models.TextField(blank=True)

    class Meta:
        abstract = True

    def __str__(self):
        return self.name


class AbstractWorkItem(models.Model):
    """What tasks and subtasks both are: a named piece of work, done or not."""

    name = models.CharField(max_length=200)
    is_complete = models.BooleanField(default=False)
    details = models.TextField(blank=True)

    class Meta:
        abstract = True

    def __str__(self):
        return self.name


class AbstractTask(AbstractWorkItem):
    class Meta:
        abstract = True


class AbstractSubtask(AbstractWorkItem):
    class Meta:
        abstract = True
