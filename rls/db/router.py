from shared.db import OWNER_ALIAS


class MigrationsAsOwner:
    """Schema changes happen on the owner's connection only. The runtime role cannot even read
    django_migrations, so no command should look for migration history through it."""

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == OWNER_ALIAS
