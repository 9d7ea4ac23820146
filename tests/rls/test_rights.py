"""What the runtime role may write in rls beyond its tenant's rows: nothing, and no ids."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connections, transaction
from django.test import Client, override_settings

from rls import checks, index
from rls.tracker.models import Project, Subtask, Task, User
from shared.db import OWNER_ALIAS, RUNTIME_ALIAS
from shared.tenancy import activate

MODELS = (User, Project, Task, Subtask)


def test_the_runtime_role_can_choose_no_id(live_db):
    with connections[RUNTIME_ALIAS].cursor() as cursor:
        for model in MODELS:
            table = model._meta.db_table
            cursor.execute(
                "SELECT has_column_privilege(current_user, %s, 'id', 'INSERT'), "
                "has_column_privilege(current_user, %s, 'id', 'UPDATE'), "
                "has_column_privilege(current_user, %s, 'name', 'UPDATE') OR %s",
                [table, table, table, model is User],
            )
            assert cursor.fetchone() == (False, False, True), table


def test_no_sequence_shows_the_runtime_role_how_many_rows_there_are(live_db, two_tenants):
    with connections[RUNTIME_ALIAS].cursor() as cursor:
        cursor.execute("SELECT count(*), count(last_value) FROM pg_sequences")
        total, shown = cursor.fetchone()
    assert total >= 5 and shown == 0


@pytest.mark.parametrize(
    ("error", "right", "on"),
    [
        ("rls.E010", "USAGE", "SEQUENCE tracker_task_id_seq"),  # a shared counter readable
        ("rls.E009", "INSERT (id)", "tracker_task"),  # an id the client could choose
    ],
)
def test_the_server_refuses_to_start_if_the_runtime_role_gains(live_db, error, right, on):
    assert not [e for e in checks.problems() if e.id == error]
    runtime = connections[RUNTIME_ALIAS].settings_dict["USER"]
    with connections[OWNER_ALIAS].cursor() as cursor:
        cursor.execute(f'GRANT {right} ON {on} TO "{runtime}"')
    try:
        assert [e.id for e in checks.problems() if e.id == error] == [error]
    finally:
        with connections[OWNER_ALIAS].cursor() as cursor:
            cursor.execute(f'REVOKE {right} ON {on} FROM "{runtime}"')


def test_an_id_is_refused_the_same_whoever_has_it(live_db, tenant_a, tenant_b):
    """B cannot tell A's id from a free one: both inserts are refused before any key check."""
    answers = []
    with activate(tenant_b.tenant):
        task = Task.objects.first()
        for pk in (tenant_a.ids["subtask"][0], 10**12):
            with transaction.atomic():
                try:
                    with transaction.atomic():
                        Subtask.objects.create(pk=pk, task=task, name="probe")
                except DatabaseError as exc:
                    answers.append((exc.__cause__.sqlstate, str(exc).splitlines()[0]))
                transaction.set_rollback(True)
        with transaction.atomic(), connections[RUNTIME_ALIAS].cursor() as cursor:
            # Nor can an update move a row onto A's id.
            with pytest.raises(DatabaseError, match="permission denied"):
                cursor.execute(
                    "UPDATE tracker_subtask SET id = %s WHERE id = %s",
                    [tenant_a.ids["subtask"][0], tenant_b.ids["subtask"][0]],
                )
            transaction.set_rollback(True)
    assert answers[0] == answers[1]
    assert answers[0][0] == "42501"


def test_the_index_function_exists_only_while_the_index_is_on(live_db, tenant_a):
    assert index.function_exists(RUNTIME_ALIAS)
    try:
        with override_settings(TENANCY_INDEX=False):
            index.sync(OWNER_ALIAS)
            assert not index.function_exists(RUNTIME_ALIAS)
            with (
                pytest.raises(DatabaseError, match="does not exist"),
                transaction.atomic(),
                connections[RUNTIME_ALIAS].cursor() as cursor,
            ):
                cursor.execute("SELECT slug FROM tracker_accounts()")
            assert Client().get("/", headers={"host": "localhost"}).status_code == 404
            assert not [e for e in checks.problems() if e.id == "rls.E008"]
        # With the index off, the function left behind stops the server from starting.
        index.sync(OWNER_ALIAS, enabled=True)
        with override_settings(TENANCY_INDEX=False):
            assert [e.id for e in checks.problems() if e.id == "rls.E008"] == ["rls.E008"]
    finally:
        index.sync(OWNER_ALIAS, enabled=True)
    assert Client().get("/", headers={"host": "localhost"}).status_code == 200
