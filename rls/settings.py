from shared.env import database, owner_database
from shared.settings import *  # noqa: F403
from shared.settings import INSTALLED_APPS, RUNTIME_DATABASE, RUNTIME_OPTIONS

ROOT_URLCONF = "rls.urls"
WSGI_APPLICATION = "rls.wsgi.application"
INSTALLED_APPS = ["rls.tracker", *INSTALLED_APPS]
TENANCY_STRATEGY = "rls.strategy.RowLevelSecurity"
DATABASE_ROUTERS = ["shared.db.router.TaskQueueAsOwner", "rls.db.router.MigrationsAsOwner"]

DATABASES = {
    # The web server's connection: the runtime role, subject to every policy. The backend sets
    # app.account_id per transaction; requests are atomic, so it is set once per request.
    "default": database(
        "RUNTIME_DATABASE_URL",
        "tenancy_rls",
        ENGINE="rls.db",
        OPTIONS=RUNTIME_OPTIONS,
        **RUNTIME_DATABASE,
    ),
    # The privileged path: migrations, createtestdata and cross_tenant() querysets; in
    # commands only, never in the web server (shared.env.owner_database).
    **owner_database("tenancy_rls", ENGINE="shared.db.owner"),
}
