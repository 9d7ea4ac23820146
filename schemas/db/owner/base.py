"""The owner role's backend: django-pgschemas', with DDL that Citus accepts too
(shared.db.schema_editor)."""

from django_pgschemas.postgresql import base

from shared.db.schema_editor import ConstraintsApartSchemaEditor


class DatabaseWrapper(base.DatabaseWrapper):
    SchemaEditorClass = ConstraintsApartSchemaEditor
