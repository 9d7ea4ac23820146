"""The rls app for `make bench`'s control run: the same code on a copy of its database with
row-level security off, to measure what the policies cost.

rls.wsgi refuses to serve such a database (rls.checks.refuse_unsafe_database); this module,
which nothing outside the benchmark imports, loads the same application without that check,
and only for the database that bench/compare.py made as the control copy and named both in
the database URL and in TENANCY_BENCH_CONTROL. The Docker image leaves bench/ out.
"""

import os
import sys

from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ["TENANCY_SERVING"] = "1"
os.environ["DJANGO_SETTINGS_MODULE"] = "rls.settings"

application = get_wsgi_application()

from django.conf import settings  # noqa: E402

from shared.db import RUNTIME_ALIAS  # noqa: E402

name = settings.DATABASES[RUNTIME_ALIAS]["NAME"]
if not name.endswith("_control") or os.environ.get("TENANCY_BENCH_CONTROL") != name:
    raise ImproperlyConfigured(f"bench.control_wsgi serves only a control copy, not {name}")
print(
    f"WARNING: serving {name} with row-level security off (make bench's control)", file=sys.stderr
)
