"""The unsafe baseline for `make bench`: the same page written the straightforward way, as a
talk or a first version would (``DEBUG`` on, persistent connections, no pool, no row-level
security, no scoping guard, the tenant looked up on every request). It exists only so that
every benchmark run shows the strategies beside it; nothing outside ``bench/`` imports it.

    BASELINE=shared   one shared schema (the rls control copy, policies off), filtered by hand
    BASELINE=multidb  a database per tenant, one persistent connection per tenant per worker,
                      all logged in as the owner role
"""
