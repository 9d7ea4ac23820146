pytest_plugins = [
    "tests.plugins.database",
    "tests.plugins.tenants",
    "tests.plugins.catalogue",
    "tests.plugins.citus",
]
