"""Root pytest set-up. `make test` runs the suite with SHOP_DEMO=1 (the public demo key)."""

import pytest

# The real servers' fixtures (the stack, the throwaway fault stacks), shared by tests/stack and
# tests/browser: registered once here, so each session fixture is made once per run.
pytest_plugins = ["tests.stack.fixtures", "tests.stack.throwaway"]


@pytest.fixture(autouse=True)
def _empty_cache(request):
    """Empty the cache before each test that uses the database.

    Test transactions roll the catalog back, but not a Redis cache, and a transactional test's
    flush leaves the cache table alone: without this a page cached by one test leaks into the next.
    """
    if "django_db_setup" in request.fixturenames:
        from django.core.cache import cache

        with request.getfixturevalue("django_db_blocker").unblock():
            cache.clear()
    yield
