"""The benchmark harness behind `make bench`, `make bench-scale`, `make bench-load` and
`make bench-tenants`. It is no part of the app: nothing under ``shared`` or a strategy imports
it, and its own dependencies (locust, matplotlib, psutil) come with ``pip install -e '.[bench]'``.
"""
