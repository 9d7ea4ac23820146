"""Strict mapping from a request's Host to a tenant slug."""

from __future__ import annotations

import re

from django.core.exceptions import DisallowedHost
from django.http.request import split_domain_port

# One DNS label: what a tenant slug may be, so that every slug is also a valid host name.
# \Z, not $: "$" would also match before a final newline.
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "[::1]"})


def tenant_slug(host: str, base_domain: str) -> str | None:
    """The tenant slug named by ``host``, or ``None`` for the bare host (the tenant index).

    Raises ``DisallowedHost`` (a 400) for anything else: a foreign domain, extra labels, or a
    label that cannot be a slug. Nothing here ever guesses a tenant.
    """
    domain, port = split_domain_port(host)
    base = base_domain.lower().rstrip(".")
    if not domain or (port and not (len(port) <= 5 and 0 < int(port) <= 65535)):
        raise DisallowedHost(f"Malformed Host header: {host[:100]!r}")
    if domain == base or domain in LOOPBACK_HOSTS:
        return None
    suffix = "." + base
    if not domain.endswith(suffix):
        raise DisallowedHost(f"Host {host[:100]!r} is not under {base!r}")
    label = domain[: -len(suffix)]
    if "." in label or not SLUG_RE.match(label):
        raise DisallowedHost(f"Host {host[:100]!r} does not name a tenant as <slug>.{base}")
    return label
