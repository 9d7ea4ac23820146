import pytest


@pytest.fixture
def cleanup(live_db, strategy):
    """Slugs appended here are dropped when the test ends, whatever happened."""
    slugs: list[str] = []
    yield slugs
    for slug in slugs:
        strategy.drop_tenant(slug)
