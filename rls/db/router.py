from shared.db import OWNER_ALIAS


class MigrationsAsOwner:
    """Schema changes happen on the owner's connection only. The runtime role cannot even read
    django_migrations, so no command should look for migration history through it."""

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: object
    ) -> bool:
        return db == OWNER_ALIAS
