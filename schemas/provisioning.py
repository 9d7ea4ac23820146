"""Creating, cloning and dropping tenant schemas, on the owner role's connection.

A new tenant's schema is a copy of the reference schema (django-pgschemas' clone reference),
made by the ``clone_schema`` function django-pgschemas ships: much faster than running every
migration again. The function is installed in ``public`` by the owner role, which owns
``public``; the runtime role could not, and does not need to.

The runtime role gets rights schema by schema (``grant_serving``), never by default: none on
the reference schema, whose rows every later clone would copy, and none on a schema's
``django_migrations``.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import django_pgschemas
from django.conf import settings
from django.db import connections, transaction
from django_pgschemas.schema import Schema
from psycopg import sql

from schemas.activation import active_schema
from shared.db import OWNER_ALIAS
from shared.db.grants import runtime_role
from shared.db.locks import advisory_lock
from shared.migrating import Result, Unit, apply_pending, migrate_unit

if TYPE_CHECKING:
    from django.db.backends.utils import CursorWrapper

    from schemas.customers.models import Account

CLONE_FUNCTION = Path(django_pgschemas.__file__).parent / "clone_schema.gz"


def reference() -> Schema:
    tenants = cast(dict[str, Any], settings.TENANTS)
    return Schema.create(tenants["default"]["CLONE_REFERENCE"])


def schema_exists(name: str) -> bool:
    with connections[OWNER_ALIAS].cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [name])
        return cursor.fetchone() is not None


def install_clone_function() -> None:
    with connections[OWNER_ALIAS].cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = 'public' AND p.proname = 'clone_schema'"
        )
        if cursor.fetchone():
            return
        with gzip.open(CLONE_FUNCTION) as packed:
            text = packed.read().decode()
        # As django-pgschemas does: a missing source or an existing target is an error.
        text = text.replace("RAISE NOTICE ' source schema", "RAISE EXCEPTION ' source schema")
        text = text.replace("RAISE NOTICE ' dest schema", "RAISE EXCEPTION ' dest schema")
        cursor.execute(text)
        # It runs with its caller's rights, so the runtime role could do nothing with it anyway.
        cursor.execute(
            "REVOKE ALL ON FUNCTION public.clone_schema(text, text, public.cloneparms[]) "
            "FROM PUBLIC"
        )


def reference_unit() -> Unit:
    ref = reference()
    return Unit(
        ref.schema_name,
        OWNER_ALIAS,
        context=lambda: active_schema(ref),
        finish=lambda: _in_owner_transaction(revoke_all, ref.schema_name),
    )


def tenant_unit(tenant: Account, record: Callable[[Result], None]) -> Unit:
    return Unit(
        tenant.slug,
        OWNER_ALIAS,
        record=record,
        context=lambda: active_schema(tenant),
        finish=lambda: _in_owner_transaction(grant_serving, tenant.schema_name),
    )


def _in_owner_transaction(grants: Callable[[CursorWrapper, str], None], schema_name: str) -> None:
    with transaction.atomic(using=OWNER_ALIAS), connections[OWNER_ALIAS].cursor() as cursor:
        grants(cursor, schema_name)


def ensure_reference() -> None:
    """The reference schema exists and is migrated (a cheap check when it is)."""
    ref = reference()
    if not schema_exists(ref.schema_name):
        with connections[OWNER_ALIAS].cursor() as cursor:
            cursor.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(ref.schema_name)))
    result = migrate_unit(reference_unit())
    if result.status == "failed":
        raise RuntimeError(f"migrating the reference schema failed: {result.error}")


def prepare_clone() -> None:
    """What cloning needs, each in its own transaction: a migrated reference schema and the
    clone function; one process at a time, or two would migrate and grant the same objects."""
    with advisory_lock("tenancy.schemas", "reference"):
        ensure_reference()
        install_clone_function()


def clone(schema_name: str) -> None:
    """Copy the reference schema to ``schema_name``, which must not exist. Run it inside the
    transaction that records the tenant: a failure or a killed process leaves nothing."""
    with transaction.atomic(using=OWNER_ALIAS), connections[OWNER_ALIAS].cursor() as cursor:
        cursor.execute(
            "SELECT public.clone_schema(%s, %s, 'DATA')", [reference().schema_name, schema_name]
        )
        grant_serving(cursor, schema_name)


def schema_sharding() -> bool:
    """Whether Citus distributes every new schema in this database (``make up CLUSTER=citus``):
    then a tenant's schema is made by migrating it, since the tables ``clone_schema`` makes
    stay on the coordinator, outside Citus (they are not distributed)."""
    with connections[OWNER_ALIAS].cursor() as cursor:
        cursor.execute("SELECT current_setting('citus.enable_schema_based_sharding', true)")
        return cursor.fetchone()[0] == "on"


def migrate_new(tenant: Account) -> None:
    """Create ``tenant``'s schema and run every migration in it, inside the transaction that
    records the tenant, like ``clone``: on Citus the schema and its tables land on one worker."""
    schema = sql.Identifier(tenant.schema_name)
    with transaction.atomic(using=OWNER_ALIAS), connections[OWNER_ALIAS].cursor() as cursor:
        cursor.execute(sql.SQL("CREATE SCHEMA {}").format(schema))
        with active_schema(tenant):
            apply_pending(Unit(tenant.slug, OWNER_ALIAS))
        grant_serving(cursor, tenant.schema_name)


def grant_serving(cursor: CursorWrapper, schema_name: str) -> None:
    """Exactly what serving a tenant needs: its schema and DML on its tables (ids are identity
    columns: inserts need no right on their sequences); not its migration history."""
    runtime = sql.Identifier(runtime_role())
    schema = sql.Identifier(schema_name)
    statements = [
        "GRANT USAGE ON SCHEMA {schema} TO {runtime}",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {runtime}",
        "REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {runtime}",
    ]
    cursor.execute(
        "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = 'django_migrations'",
        [schema_name],
    )
    if cursor.fetchone():
        statements.append("REVOKE ALL ON TABLE {schema}.django_migrations FROM {runtime}")
    for statement in statements:
        cursor.execute(sql.SQL(statement).format(schema=schema, runtime=runtime))


def revoke_all(cursor: CursorWrapper, schema_name: str) -> None:
    """Nothing for the runtime role in ``schema_name`` (the reference schema)."""
    runtime = sql.Identifier(runtime_role())
    schema = sql.Identifier(schema_name)
    for statement in (
        "REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {runtime}",
        "REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {runtime}",
        "REVOKE ALL ON SCHEMA {schema} FROM {runtime}",
    ):
        cursor.execute(sql.SQL(statement).format(schema=schema, runtime=runtime))


def drop(schema_name: str) -> None:
    with connections[OWNER_ALIAS].cursor() as cursor:
        cursor.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema_name))
        )
