"""The function behind the bare host's tenant index exists only while the index is on.

``tracker_accounts()`` runs with its owner's rights and returns every account: whoever can
call it as the runtime role can list every customer. With ``TENANCY_INDEX`` off (the default
for any base domain but localhost) ``migrate`` drops it, and the start-up check refuses to
serve while it is still there.
"""

from __future__ import annotations

from django.conf import settings
from django.db import connections

from shared.db import OWNER_ALIAS
from shared.db.grants import runtime_role

FUNCTION = "tracker_accounts()"
CREATE = """
    CREATE OR REPLACE FUNCTION tracker_accounts()
        RETURNS TABLE (id bigint, slug varchar, name varchar)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
        AS $$ SELECT a.id, a.slug, a.name FROM tracker_account a ORDER BY a.slug $$
"""


def function_exists(alias: str) -> bool:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT to_regprocedure(%s) IS NOT NULL", [f"public.{FUNCTION}"])
        return cursor.fetchone()[0]


def sync(alias: str, enabled: bool | None = None) -> None:
    """Create or drop the function to match ``TENANCY_INDEX`` (or ``enabled``)."""
    enabled = settings.TENANCY_INDEX if enabled is None else enabled
    role = connections[alias].ops.quote_name(runtime_role())
    with connections[alias].cursor() as cursor:
        if enabled:
            cursor.execute(CREATE)
            cursor.execute(f"REVOKE ALL ON FUNCTION {FUNCTION} FROM PUBLIC")
            cursor.execute(f"GRANT EXECUTE ON FUNCTION {FUNCTION} TO {role}")
        else:
            cursor.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}")


def after_migrate(sender: object, using: str, **kwargs: object) -> None:
    # Migrations run on the owner's connection only (rls.db.router); so does this. Replaced
    # every time while the index is on, so that it is always this module's definition.
    if using == OWNER_ALIAS and (settings.TENANCY_INDEX or function_exists(using)):
        sync(using)
