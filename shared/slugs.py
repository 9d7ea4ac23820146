"""Which names may become tenants.

A slug turns into a host name in every strategy, a schema name in ``schemas`` (``-`` becomes
``_``) and part of a database name in ``multidb``. One rule covers all three, so that a tenant
made in one strategy can be moved to another: a name that any strategy would map onto
something that is not a tenant's own (``public``, the clone reference, the template
database, a role whose name is on the runtime role's ``search_path``) is refused everywhere,
before anything is created.
"""

from __future__ import annotations

from collections.abc import Callable

from shared.hosts import SLUG_RE

# Names the database or a strategy reserves, compared in their identifier form (``_`` for
# ``-``): PostgreSQL's own schemas and databases, django-pgschemas' clone reference and
# multidb's template. What the server reports at the time (every role, and every schema or
# database that is no tenant's) comes on top, from the strategy.
RESERVED = frozenset(
    {
        "public",
        "information_schema",
        "reference",
        "template",
        "template0",
        "template1",
        "postgres",
    }
)


class SlugRefused(ValueError):
    """A name that cannot be a tenant; the message is one line for the user."""


def identifier(slug: str) -> str:
    """The slug as an SQL identifier: a slug is a DNS label, an identifier has no ``-``."""
    return slug.replace("-", "_")


def check_slug(slug: str, taken: Callable[[str], bool] = lambda slug: False) -> None:
    """Raise ``SlugRefused`` unless ``slug`` may name a new tenant in every strategy.
    ``taken(slug)``: whether the server has something by the names the slug maps onto."""
    if not SLUG_RE.match(slug):
        raise SlugRefused(
            f"{slug!r} is not a valid slug: lowercase letters, digits and hyphens, "
            "at most 63, not starting or ending with a hyphen"
        )
    if not slug[0].isalpha():
        # A schema name that starts with a digit needs quoting, and django-pgschemas refuses it.
        raise SlugRefused(f"{slug!r} is refused: a slug must start with a letter")
    name = identifier(slug)
    if name.startswith("pg_") or name in RESERVED or taken(slug):
        raise SlugRefused(
            f"{slug!r} is refused: {name!r} is reserved by the database or the strategy"
        )
