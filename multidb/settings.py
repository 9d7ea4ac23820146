from shared.env import database, env, owner_database
from shared.settings import *  # noqa: F403
from shared.settings import INSTALLED_APPS, MIDDLEWARE, RUNTIME_DATABASE, RUNTIME_OPTIONS

ROOT_URLCONF = "multidb.urls"
WSGI_APPLICATION = "multidb.wsgi.application"
INSTALLED_APPS = ["multidb.catalogue", "multidb.tracker", *INSTALLED_APPS]
MIDDLEWARE = [*MIDDLEWARE, "multidb.middleware.TenantAtomicRequests"]
TENANCY_STRATEGY = "multidb.strategy.DatabasePerTenant"
DATABASE_ROUTERS = ["shared.db.router.TaskQueueAsOwner", "multidb.routing.TenantRouter"]

# Connections to tenant databases that one process keeps open, idle or in use, shared by
# its threads (multidb/db/warm.py, multidb/README.md).
TENANCY_TENANT_CONNECTIONS = int(env("TENANCY_TENANT_CONNECTIONS", "100"))

DATABASES = {
    # The catalogue, read by the web server as the runtime role (SELECT only). Tenant
    # databases get aliases of their own when first needed (multidb.routing).
    # Requests are atomic per tenant database (multidb.middleware), not here.
    "default": database(
        "RUNTIME_DATABASE_URL",
        "tenancy_multidb",
        OPTIONS=RUNTIME_OPTIONS,
        **{**RUNTIME_DATABASE, "ATOMIC_REQUESTS": False},
    ),
    # The owner role: catalogue writes, provisioning and migrations; in commands only,
    # never in the web server (shared.env.owner_database).
    **owner_database("tenancy_multidb"),
}
