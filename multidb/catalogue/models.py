"""The tenant catalogue, in the ``default`` database: which tenants exist and where their
databases are. Nothing of a tenant's own data lives here."""

from django.db import models

from shared.models import AbstractAccount

# None by default: every process keeps idle connections warm per tenant (multidb.db.warm),
# and they all count; a limit is for the tenant that needs one, sized to the deployment.
DEFAULT_CONNECTION_LIMIT = -1


class Tenant(AbstractAccount):
    class State(models.TextChoices):
        PROVISIONING = "provisioning"
        READY = "ready"
        FAILED = "failed"

    db_name = models.CharField(max_length=63, unique=True)
    # Empty host and port: the server the catalogue is on.
    db_host = models.CharField(max_length=255, blank=True)
    db_port = models.PositiveIntegerField(null=True, blank=True)
    state = models.CharField(max_length=12, choices=State, default=State.PROVISIONING)
    # The last migration applied to the tenant's database, e.g. "tracker.0001_initial".
    migration = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    migration_error = models.TextField(blank=True)
    # Which password the tenant's database role has (multidb.provisioning.role_password).
    role_generation = models.PositiveIntegerField(default=1)
    # Sessions the tenant's database accepts at once (its CONNECTION LIMIT), every role's
    # counted; -1: no limit.
    connection_limit = models.IntegerField(
        default=DEFAULT_CONNECTION_LIMIT, db_default=DEFAULT_CONNECTION_LIMIT
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(AbstractAccount.Meta):
        pass

    @property
    def server(self) -> str:
        return f"{self.db_host}:{self.db_port}" if self.db_host else "the catalogue's server"
