"""pagecache/backends.py: Django's database cache with a leaner read, on the same table and rows.

These run on the test database of the run (SQLite, or MariaDB in CI), whose cache table Django's
test runner creates with `createcachetable`.
"""

import datetime

import pytest
from django.core.cache.backends.db import DatabaseCache as DjangoDatabaseCache
from django.core.cache.backends.memcached import PyMemcacheCache as DjangoPyMemcacheCache
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from pymemcache.exceptions import MemcacheUnexpectedCloseError

from harness.servers import Memcached, Redis
from pagecache.backends import DatabaseCache, PyMemcacheCache, RedisCache

PARAMS = {"KEY_PREFIX": "dbcache-test"}


@pytest.fixture
def table(settings):
    return settings.CACHES["default"].get("LOCATION", "shop_cache")


@pytest.fixture
def ours(table):
    return DatabaseCache(table, PARAMS)


@pytest.fixture
def djangos(table):
    return DjangoDatabaseCache(table, PARAMS)


@pytest.mark.django_db
def test_reads_what_djangos_own_backend_wrote(ours, djangos):
    djangos.set("page", {"body": b"\x1f\x8b gzip bytes", "headers": {"ETag": '"x"'}}, 60)
    assert ours.get("page") == {"body": b"\x1f\x8b gzip bytes", "headers": {"ETag": '"x"'}}


@pytest.mark.django_db
def test_djangos_own_backend_reads_what_it_wrote(ours, djangos):
    ours.set_many({"a": 1, "b": "two"}, 60)
    assert djangos.get_many(["a", "b"]) == {"a": 1, "b": "two"}


@pytest.mark.django_db
def test_get_many_returns_the_keys_found_under_the_callers_names(ours):
    ours.set_many({"page:1:identity": "x", "generation": 7}, 60)
    assert ours.get_many(["page:1:identity", "generation", "missing"]) == {"page:1:identity": "x", "generation": 7}
    assert ours.get("missing", "default") == "default"
    assert ours.get_many([]) == {}


@pytest.mark.django_db
def test_one_query_per_read(ours):
    ours.set("page", "x", 60)
    with CaptureQueriesContext(connection) as queries:
        assert ours.get("page") == "x"
        assert ours.get_many(["page", "other"]) == {"page": "x"}
    assert len(queries) == 2


@pytest.mark.django_db
def test_expired_rows_are_not_returned_and_are_removed(ours, djangos, table):
    ours.set("old", "stale", 60)
    past = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
    with connection.cursor() as cursor:
        expires = connection.ops.adapt_datetimefield_value(past)
        cursor.execute(f"UPDATE {connection.ops.quote_name(table)} SET expires = %s", [expires])
    assert ours.get("old") is None
    assert djangos.has_key("old") is False
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)}")
        assert cursor.fetchone()[0] == 0


@pytest.mark.django_db
def test_versions_and_prefixes_keep_keys_apart(table):
    first, second = DatabaseCache(table, {"KEY_PREFIX": "one"}), DatabaseCache(table, {"KEY_PREFIX": "two"})
    first.set("page", "first site", 60)
    second.set("page", "second site", 60)
    first.set("page", "version two", 60, version=2)
    assert (first.get("page"), second.get("page"), first.get("page", version=2)) == (
        "first site",
        "second site",
        "version two",
    )


# ------------------------------------------------------------------------------------------------
# memcached: one connection for many requests
# ------------------------------------------------------------------------------------------------


def _running(server):
    """Start a throwaway server for one test; stop it by its PID afterwards."""
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def memcached(tmp_path):
    yield from _running(Memcached(tmp_path / "memcached"))


def _connections_opened(server):
    # `total_connections` counts the stats connection that asks, too.
    return int(server.stats()["total_connections"])


@pytest.mark.parametrize("backend, connections", [(PyMemcacheCache, 0), (DjangoPyMemcacheCache, 5)])
def test_memcached_connection_is_kept_from_one_request_to_the_next(memcached, backend, connections):
    """Ours keeps one connection; Django's own class opens one per request."""
    cache = backend(memcached.location, {})
    cache.set("page", "x", 60)
    cache.close()  # the end of the request that stored the page
    before = _connections_opened(memcached)
    for _ in range(5):
        assert cache.get("page") == "x"
        cache.close()  # what Django calls at the end of every request
    assert _connections_opened(memcached) - before - 1 == connections  # 1: the second stats query


def test_memcached_restart_costs_one_miss_then_reconnects(memcached):
    cache = PyMemcacheCache(memcached.location, {})
    cache.set("page", "x", 60)
    memcached.stop()
    memcached.start()  # same port, empty
    with pytest.raises(MemcacheUnexpectedCloseError):  # the old connection; pagecache/store.py makes it a miss
        cache.get("page")
    cache.set("page", "y", 60)
    assert cache.get("page") == "y"


# ------------------------------------------------------------------------------------------------
# Redis: one redis-py client for many calls
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def redis_server(tmp_path):
    yield from _running(Redis(tmp_path / "redis"))


def _count_clients_built(cache):
    built = []
    real = cache._cache._client

    def counting(**kwargs):
        built.append(kwargs)
        return real(**kwargs)

    cache._cache._client = counting
    return built


@pytest.mark.parametrize("backend, clients", [(RedisCache, 1), (DjangoRedisCache, 6)])
def test_redis_client_is_built_once_not_per_call(redis_server, backend, clients):
    cache = backend(redis_server.url, {})
    built = _count_clients_built(cache)
    cache.set("page", "x", 60)
    for _ in range(5):
        assert cache.get("page") == "x"
    assert len(built) == clients


def test_reused_redis_client_reconnects_after_a_restart(redis_server):
    cache = RedisCache(redis_server.url, {})
    cache.set("page", "x", 60)
    redis_server.stop()
    redis_server.start()  # same port, empty
    assert cache.get("page") is None
    cache.set("page", "y", 60)
    assert cache.get("page") == "y"
