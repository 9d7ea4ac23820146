"""The tenant registry, in the public schema: each tenant names its schema, and its domains
name the hosts it is served on."""

from typing import Any

from django.db import models
from django_pgschemas.models import TenantModel
from django_pgschemas.routing.models import DomainModel

from shared.models import AbstractAccount


class Account(TenantModel, AbstractAccount):  # type: ignore[django-manager-missing]
    # Schemas are created and dropped by schemas.provisioning on the owner's connection;
    # django-pgschemas would do it on the `default` one, the runtime role, which may not.
    auto_create_schema = False
    auto_drop_schema = False

    # Why the last migratetenants failed for this schema (empty: it did not).
    migration_error = models.TextField(blank=True)

    class Meta(AbstractAccount.Meta):
        pass

    def save(self, *args: Any, **kwargs: Any) -> None:
        # TenantModel.save() only adds schema creation, which is off here, and passes its
        # arguments to Model.save() positionally, which Django 5.2 deprecates.
        models.Model.save(self, *args, **kwargs)


class Domain(DomainModel):
    pass
