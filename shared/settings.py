"""Settings every strategy shares; each strategy's settings module imports these and adds its
databases, apps and strategy class."""

from shared.env import ROOT, SettingError, env, env_bool

BASE_DIR = ROOT
DEBUG = env_bool("DJANGO_DEBUG", False)
# A default key only while debugging: anything else signed with a published key is forgeable.
SECRET_KEY = env("DJANGO_SECRET_KEY") or ("insecure-development-key" if DEBUG else "")
if not SECRET_KEY:
    raise SettingError(
        "DJANGO_SECRET_KEY is not set (it must be when DJANGO_DEBUG is off): run `make up` "
        "(it writes one into .env), or see .env.example"
    )

# Tenants are <slug>.<base domain>; browsers resolve *.localhost to loopback by themselves.
TENANCY_BASE_DOMAIN = env("TENANCY_BASE_DOMAIN", "localhost").lower()
# The bare host's index lists every tenant: fine on a developer's machine, not for customers.
# On by default only where the base domain is localhost.
# How long a process remembers a tenant it found by its Host (shared.strategy.find_tenant).
TENANCY_TENANT_CACHE_SECONDS = float(env("TENANCY_TENANT_CACHE_SECONDS", "2"))
# Each tenant's statement timeout and its name in application_name, set with the tenant for
# every transaction (shared.models.AbstractAccount.statement_timeout). Off only to measure what
# they cost (make bench-tasks).
TENANCY_TENANT_LIMITS = env_bool("TENANCY_TENANT_LIMITS", True)
# rls on Citus (make up CLUSTER=citus): the tenant is set with SET LOCAL, which Citus passes on
# to its workers, instead of set_config(), which it does not (rls.citus). rls refuses to serve
# distributed tables without it (rls.checks).
TENANCY_CITUS = env_bool("TENANCY_CITUS", False)
# A monitor's key to the bare host's /health/tenants (shared.health); unset: no such page.
TENANCY_HEALTH_TOKEN = env("TENANCY_HEALTH_TOKEN", "")
TENANCY_INDEX = env_bool("TENANCY_INDEX", TENANCY_BASE_DOMAIN == "localhost")
ALLOWED_HOSTS = [TENANCY_BASE_DOMAIN, "." + TENANCY_BASE_DOMAIN, "127.0.0.1", "[::1]"]

INSTALLED_APPS = ["shared", "django_tasks", "django_tasks_db"]

# Background tasks (shared.tasks): each records its tenant; `manage.py runworker` runs them.
TASKS = {"default": {"BACKEND": "shared.tasks.TenantDatabaseBackend"}}

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "shared.middleware.TenantMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en"
USE_I18N = False

# Connections come from psycopg's pool (opened per strategy in DATABASES), so CONN_MAX_AGE stays 0.
TENANCY_POOL = {
    "min_size": int(env("DB_POOL_MIN", "2")),
    "max_size": int(env("DB_POOL_MAX", "10")),
    "timeout": 10,
}

# "transaction" when PgBouncer in transaction mode stands between the runtime role and
# PostgreSQL: one client's consecutive transactions may then run on different server
# connections, so nothing may outlive a transaction. Server-side cursors (declared WITH HOLD
# outside a transaction) and psycopg's prepared statements would; both are turned off, and
# shared.checks refuses to serve a strategy whose tenant lives in the session.
TENANCY_RUNTIME_POOLING = env("RUNTIME_DATABASE_POOLING", "session").lower()
_TRANSACTION_POOLING = TENANCY_RUNTIME_POOLING == "transaction"
RUNTIME_DATABASE = {"ATOMIC_REQUESTS": True, "DISABLE_SERVER_SIDE_CURSORS": _TRANSACTION_POOLING}
# Parameters are bound on the server: one role serves every tenant, and a session of that role
# sees the text of the others' queries in pg_stat_activity, which with values bound on the
# client would carry another tenant's search terms and ids.
RUNTIME_OPTIONS = {"pool": TENANCY_POOL, "server_side_binding": True} | (
    {"prepare_threshold": None} if _TRANSACTION_POOLING else {}
)

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "KEY_FUNCTION": "shared.cache.tenant_key",
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"brief": {"()": "shared.logs.BriefFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler"},
        "brief": {"class": "logging.StreamHandler", "formatter": "brief"},
    },
    "root": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", "WARNING")},
    # A bad Host is the client's mistake: one line in the log, not a traceback.
    "loggers": {
        "django.security.DisallowedHost": {"handlers": ["brief"], "propagate": False},
    },
}
