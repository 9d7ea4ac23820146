from shared.env import database, owner_database
from shared.settings import *  # noqa: F403
from shared.settings import INSTALLED_APPS, RUNTIME_DATABASE, RUNTIME_OPTIONS

ROOT_URLCONF = "schemas.urls"
WSGI_APPLICATION = "schemas.wsgi.application"
# shared first: its migrate (as the owner role) wins over django-pgschemas' own.
INSTALLED_APPS = [*INSTALLED_APPS, "django_pgschemas", "schemas.customers", "schemas.tracker"]
TENANCY_STRATEGY = "schemas.strategy.SchemaPerTenant"

TENANTS = {
    # The task queue is in public: one table for every tenant's tasks (shared.tasks).
    "public": {
        "APPS": [
            "django_pgschemas",
            "shared",
            "django_tasks",
            "django_tasks_db",
            "schemas.customers",
        ]
    },
    "default": {
        "TENANT_MODEL": "customers.Account",
        "DOMAIN_MODEL": "customers.Domain",
        "APPS": ["schemas.tracker"],
        "URLCONF": "schemas.urls",
        # New tenants are copies of this schema, migrated once, instead of migrated one by one.
        "CLONE_REFERENCE": "reference",
    },
}
DATABASE_ROUTERS = [
    "shared.db.router.TaskQueueAsOwner",
    "django_pgschemas.routers.TenantAppsRouter",
]
# No sessions here. django-pgschemas 1.1.1's system checks import the session model whenever
# the session engine is database-backed (the default), installed or not.
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
# Schema changes (and django-pgschemas' own schema work) run as the owner role.
PGSCHEMAS_TENANT_DB_ALIAS = "owner"

DATABASES = {
    # The web server: the runtime role. Its backend sets search_path to the active schema
    # in every transaction (schemas/db/base.py), never for the whole session.
    "default": database(
        "RUNTIME_DATABASE_URL",
        "tenancy_schemas",
        ENGINE="schemas.db",
        OPTIONS=RUNTIME_OPTIONS,
        **RUNTIME_DATABASE,
    ),
    # The owner role: migrations and provisioning; in commands only, never in the web
    # server (shared.env.owner_database).
    **owner_database("tenancy_schemas", ENGINE="schemas.db.owner"),
}
