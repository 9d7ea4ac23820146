"""Which schema the next transaction uses: django-pgschemas' active schema, a ContextVar that
this project's per-transaction backend (schemas/db/base.py) reads."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django_pgschemas import schema as pgschemas
from django_pgschemas.schema import Schema


@contextmanager
def active_schema(schema: Schema) -> Iterator[None]:
    """django-pgschemas' ``override()``, restoring the previous schema even when the block
    raises (1.1.1's skips the reset then, and leaves the schema active)."""
    token = pgschemas.push(schema)
    try:
        yield
    finally:
        if token is not None:
            pgschemas.active.reset(token)
