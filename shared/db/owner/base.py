"""The owner role's backend where no strategy needs another: PostgreSQL's, with DDL that
Citus accepts too (shared.db.schema_editor)."""

from django.db.backends.postgresql import base

from shared.db.schema_editor import ConstraintsApartSchemaEditor


class DatabaseWrapper(base.DatabaseWrapper):
    SchemaEditorClass = ConstraintsApartSchemaEditor
