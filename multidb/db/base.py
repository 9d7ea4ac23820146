"""The backend of the runtime role's connections to tenant databases: they come from, and go
back to, the process's warm connections (multidb.db.warm) instead of being opened for each
request and closed after it."""

from __future__ import annotations

from typing import Any

import psycopg
from django.conf import settings
from django.db.backends.postgresql import base

from multidb.db.warm import pool

# How long a request waits for a connection when all of the budget is in use.
WAIT_SECONDS = 5.0


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params: dict[str, Any]) -> psycopg.Connection:
        self._warm_key = (
            *sorted((k, str(v)) for k, v in conn_params.items()),
            ("limits", str(self.settings_dict.get("LIMITS"))),
        )
        connection: psycopg.Connection = pool.take(
            self._warm_key,
            lambda: super(DatabaseWrapper, self).get_new_connection(conn_params),
            budget=settings.TENANCY_TENANT_CONNECTIONS,
            timeout=WAIT_SECONDS,
        )
        return connection

    def _close(self) -> None:
        if self.connection is not None:
            with self.wrap_database_errors:
                pool.give_back(self._warm_key, self.connection)
