"""The store's cache backends: Django's own, with less work per request where it measured.

A cached page costs one cache read, so whatever a backend does per request besides that read is a
large share of a hit. Two of Django's backends do more than they must:

`DatabaseCache` (the default, for a `dbcache://` CACHE_URL). Django's `get_many` rebuilds the same
things on every call: its SQL statement, a `DateTimeField` (whose constructor alone costs more
than the SQLite query it serves) and that field's converters. With SQLite that Python was about
half of a cache hit in-process (docs/benchmarks.md). This subclass builds the statement and the
converters once per database connection and keeps everything else: the same table, the same
row format (the value is a base64 pickle, `expires` a datetime), the same key rules and the same
removal of the expired rows it finds. Writes (`set`, `add`, culling) and `createcachetable` are
Django's own.

`RedisCache` (for a `redis://` CACHE_URL). Django's Redis client builds a new `redis.Redis` object
for every cache call, and redis-py's constructor fills a table of about 170 reply callbacks each
time: more Python than the whole GET it serves. This subclass builds one `redis.Redis` per
connection pool and reuses it (redis-py's clients are safe to share; the pool hands out the
connections).

`PyMemcacheCache` (for a `pymemcache://` CACHE_URL). Django disconnects from memcached at the end
of every request, through `close()` (Django ticket #11331, fixed for pylibmc only), so each hit
paid for a new TCP connection. pymemcache reconnects by itself after an error, so this subclass
keeps the connection.

config/settings.py puts them in CACHES in place of Django's.
"""

import base64
import pickle

from django.core.cache.backends.db import DatabaseCache as DjangoDatabaseCache
from django.core.cache.backends.memcached import PyMemcacheCache as DjangoPyMemcacheCache
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient as DjangoRedisCacheClient
from django.db import connections, models, router
from django.utils.timezone import now as tz_now

# One expression serves every conversion: converters only read its output field.
_EXPIRES = models.Expression(output_field=models.DateTimeField())


class DatabaseCache(DjangoDatabaseCache):
    """`django.core.cache.backends.db.DatabaseCache`, reading with a prepared statement."""

    def __init__(self, table, params):
        super().__init__(table, params)
        self._statements = {}  # (connection alias, number of keys) -> SQL
        self._converters = {}  # connection alias -> converters of the `expires` column

    def get(self, key, default=None, version=None):
        return self.get_many([key], version).get(key, default)

    def get_many(self, keys, version=None):
        if not keys:
            return {}
        key_map = {self.make_and_validate_key(key, version=version): key for key in keys}
        connection = connections[router.db_for_read(self.cache_model_class)]
        with connection.cursor() as cursor:
            cursor.execute(self._select(connection, len(key_map)), list(key_map))
            rows = cursor.fetchall()
        converters = self._expires_converters(connection)
        now = tz_now()
        result, expired_keys = {}, []
        for key, value, expires in rows:
            for converter in converters:
                expires = converter(expires, _EXPIRES, connection)
            if expires < now:
                expired_keys.append(key)
            else:
                value = connection.ops.process_clob(value)
                result[key_map.get(key)] = pickle.loads(base64.b64decode(value.encode()))
        if expired_keys:
            self._base_delete_many(expired_keys)
        return result

    def _select(self, connection, count):
        """The SELECT of Django's get_many, built once per connection and number of keys."""
        statement = self._statements.get((connection.alias, count))
        if statement is None:
            quote_name = connection.ops.quote_name
            statement = "SELECT {}, {}, {} FROM {} WHERE {} IN ({})".format(
                quote_name("cache_key"),
                quote_name("value"),
                quote_name("expires"),
                quote_name(self._table),
                quote_name("cache_key"),
                ", ".join(["%s"] * count),
            )
            self._statements[(connection.alias, count)] = statement
        return statement

    def _expires_converters(self, connection):
        """The converters Django applies to `expires` (text to datetime on SQLite, time zones)."""
        converters = self._converters.get(connection.alias)
        if converters is None:
            converters = connection.ops.get_db_converters(_EXPIRES) + _EXPIRES.get_db_converters(connection)
            self._converters[connection.alias] = converters
        return converters


class PyMemcacheCache(DjangoPyMemcacheCache):
    """`django.core.cache.backends.memcached.PyMemcacheCache`, keeping its connection."""

    def close(self, **kwargs):
        # Called at the end of every request (django.core.cache.close_caches). pymemcache drops
        # a connection that fails and opens a new one on the next command.
        pass


class RedisCacheClient(DjangoRedisCacheClient):
    """Django's Redis client, with one `redis.Redis` per connection pool instead of one per call."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}  # connection pool -> redis.Redis

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(pool)
        if client is None:
            client = self._clients[pool] = self._client(connection_pool=pool)
        return client


class RedisCache(DjangoRedisCache):
    """`django.core.cache.backends.redis.RedisCache`, reusing its redis-py clients."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = RedisCacheClient
