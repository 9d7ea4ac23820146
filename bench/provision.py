"""Run inside a strategy's Django by bench.common.provision: seconds to create each of
``--count`` tenants, and in schemas also to create ``--compare`` schemas the other way:
by migrating them rather than cloning the reference on one server, by cloning rather than
migrating on Citus; printed as JSON ``[created, other]``.

    DJANGO_SETTINGS_MODULE=schemas.settings python -m bench.provision --count 5 --compare 5
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import time

import django


def create(count: int) -> list[float]:
    from shared.strategy import get_strategy

    strategy = get_strategy()
    times = []
    for n in range(count):
        started = time.perf_counter()
        strategy.create_tenant(f"bench-{n}", f"Bench {n}")
        times.append(time.perf_counter() - started)
    return times


def migrate_instead(count: int) -> list[float]:
    """What cloning saves: new schemas made by running every migration."""
    from django.db import connections
    from django_pgschemas.schema import Schema
    from psycopg import sql

    from schemas.activation import active_schema
    from shared.db import OWNER_ALIAS
    from shared.migrating import Unit, migrate_unit

    times = []
    for n in range(count):
        name = f"migrated_{n}"
        started = time.perf_counter()
        with connections[OWNER_ALIAS].cursor() as cursor:
            cursor.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        schema = Schema.create(name)
        migrate_unit(Unit(name, OWNER_ALIAS, context=functools.partial(active_schema, schema)))
        times.append(time.perf_counter() - started)
    return times


def clone_instead(count: int) -> list[float]:
    """On Citus, where provisioning migrates (schemas.provisioning.schema_sharding): what
    cloning would take, though the tables it makes stay on the coordinator, undistributed."""
    # By name: the type checker reads bench with each strategy's settings, and schemas'
    # modules only make sense with its own.
    provisioning = importlib.import_module("schemas.provisioning")
    provisioning.prepare_clone()
    times = []
    for n in range(count):
        started = time.perf_counter()
        provisioning.clone(f"cloned_{n}")
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--compare", type=int, default=0)
    args = parser.parse_args()
    django.setup()
    from shared.strategy import get_strategy

    created = create(args.count)
    other: list[float] = []
    if get_strategy().name == "schemas":
        sharded = importlib.import_module("schemas.provisioning").schema_sharding()
        # The other way than provisioning's own: migrating on one server, cloning on Citus.
        other = (clone_instead if sharded else migrate_instead)(args.compare)
    print(json.dumps([created, other]))


if __name__ == "__main__":
    main()
