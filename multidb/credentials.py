"""The password of a tenant's database role: derived, never stored.

The catalogue, which the runtime role reads to route requests, holds no password; every web
process derives the same one from ``SECRET_KEY``, the role's name and the tenant's
``role_generation``, which ``rotatetenantroles`` moves on. Changing ``SECRET_KEY`` changes every
password: run ``rotatetenantroles --all`` then.
"""

import functools

from django.utils.crypto import salted_hmac


# The router asks for it on every query of a tenant model: derive each password once.
@functools.lru_cache(maxsize=4096)
def role_password(role: str, generation: int) -> str:
    return salted_hmac(
        "tenancy.multidb.tenant-role", f"{role}:{generation}", algorithm="sha256"
    ).hexdigest()
