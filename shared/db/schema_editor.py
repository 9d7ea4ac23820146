"""DDL that Citus accepts as well as PostgreSQL does.

Citus refuses ``ALTER TABLE ... ADD COLUMN`` that also adds a constraint ("cannot execute ADD
COLUMN command with PRIMARY KEY, UNIQUE, FOREIGN and CHECK constraints"), which is what
Django writes for a new column with a check (every ``PositiveIntegerField``) or a foreign key.
This editor adds the column first and its constraints after it, under the names PostgreSQL
would have given them, so that a database migrated either way ends up the same.
"""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql.schema import DatabaseSchemaEditor


class ConstraintsApartSchemaEditor(DatabaseSchemaEditor):
    # Foreign keys then go to deferred_sql, as on backends without inline ones.
    sql_create_column_inline_fk = None  # type: ignore[assignment]

    def add_field(self, model: Any, field: Any) -> None:
        check = field.db_parameters(connection=self.connection)["check"]
        if not check:
            super().add_field(model, field)
            return
        # The inherited add_field appends ``sql_check_constraint % params`` to the column.
        self.sql_check_constraint = ""
        try:
            super().add_field(model, field)
        finally:
            del self.sql_check_constraint
        name = f"{model._meta.db_table}_{field.column}_check"
        self.execute(self._create_check_sql(model, name, check))  # type: ignore[attr-defined]
