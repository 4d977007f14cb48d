"""Costs that grow with the catalog, measured inside one Django process (no server, no load tool).

    python -m bench.costs pages    queries and time per page, through the store's real URLs
    python -m bench.costs culling  the database cache with more pages than MAX_ENTRIES holds
    python -m bench.costs hitpath --path P   Django's own time per request for one URL, called as
                                   uWSGI calls it (the WSGI handler, no server), and the part of it
                                   spent in cache calls: what bounds a HIT against the floor

bench/run.py runs each in a subprocess with the environment that picks the database and the cache
(DATABASE_URL, CACHE_URL, CACHE_MAX_ENTRIES) and reads the JSON line it prints last.
"""

import argparse
import io
import json
import os
import random
import statistics
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ.setdefault("SHOP_DEMO", "1")

import django  # noqa: E402

django.setup()

from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from shop.models import PRODUCTS_PER_PAGE, Category, Product  # noqa: E402


def _client():
    return Client(HTTP_HOST="127.0.0.1")


class _Queries:
    """Record the SQL of every query run inside the block (Django resets connection.queries
    at each request start, so CaptureQueriesContext cannot span a test-client request)."""

    def __enter__(self):
        self.sql = []
        self._wrapper = connection.execute_wrapper(self._record)
        self._wrapper.__enter__()
        return self

    def __exit__(self, *exc_info):
        self._wrapper.__exit__(*exc_info)

    def _record(self, execute, sql, params, many, context):
        self.sql.append(sql)
        return execute(sql, params, many, context)


def _measure(client, url, samples):
    """Return the queries of one request and the median and p90 time of `samples` more (ms)."""
    client.get(url)  # warm: templates compiled, connection open
    with _Queries() as queries:
        response = client.get(url)
    times = []
    for _ in range(samples):
        began = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - began) * 1000)
    times.sort()
    return {
        "url": url,
        "status": response.status_code,
        "django_cache": response.get("X-Django-Cache", "-"),
        "queries": len(queries.sql),
        "sql": [sql[:160] for sql in queries.sql],
        "median_ms": round(statistics.median(times), 3),
        "p90_ms": round(times[int(len(times) * 0.9) - 1], 3),
        "bytes": len(response.content),
    }


def pages(samples):
    """Time the product page, a category's first and last listing page, and home."""
    from django.conf import settings

    client = _client()
    products = Product.objects.active()
    count = products.count()
    product = products.order_by("id")[count // 2]
    category = Category.objects.order_by("id").first()
    last_page = max(1, -(-category.products.active().count() // PRODUCTS_PER_PAGE))
    urls = {
        "product": product.get_absolute_url(),
        "category_first": category.get_absolute_url(),
        "category_last": f"{category.get_absolute_url()}?page={last_page}",
        "home": "/",
    }
    return {
        "products": count,
        "cache_backend": settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1],
        "pages": {name: _measure(client, url, samples) for name, url in urls.items()},
    }


def _table_size(table):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*), COALESCE(SUM(LENGTH(value)), 0) FROM {table}")
        return cursor.fetchone()


def culling(urls):
    """Visit `urls` product pages twice (the second time shuffled); count the hits of round two."""
    from django.conf import settings

    table = settings.CACHES["default"]["LOCATION"]
    call_command("createcachetable", verbosity=0)
    cache.clear()
    client = _client()
    paths = [p.get_absolute_url() for p in Product.objects.active().order_by("id")[:urls]]
    passes = []
    for number, order in enumerate((paths, random.Random(1).sample(paths, len(paths))), start=1):
        outcomes = {}
        began = time.perf_counter()
        for path in order:
            outcome = client.get(path).get("X-Django-Cache", "-")
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        seconds = time.perf_counter() - began
        rows, value_bytes = _table_size(table)
        passes.append({"pass": number, "outcomes": outcomes, "seconds": round(seconds, 2), "rows": rows,
                       "value_bytes": value_bytes})
    # What one hit costs the database: the queries of a request served from the cache.
    with _Queries() as queries:
        hit = client.get(paths[0])
    second = passes[1]
    return {
        "urls": len(paths),
        "max_entries": settings.CACHES["default"]["OPTIONS"]["MAX_ENTRIES"],
        "cull_frequency": settings.CACHES["default"]["OPTIONS"]["CULL_FREQUENCY"],
        "passes": passes,
        "hit_rate": round(second["outcomes"].get("HIT", 0) / len(paths), 4),
        "rows": second["rows"],
        "value_bytes": second["value_bytes"],
        "bytes_per_page": round(second["value_bytes"] / second["rows"] * 2) if second["rows"] else None,
        "hit_queries": len(queries.sql) if hit.get("X-Django-Cache") == "HIT" else None,
    }


class _CacheClock:
    """Add up the time spent in the default cache's calls (patched on this thread's backend)."""

    METHODS = ("get", "get_many", "set", "set_many", "add", "delete")

    def __init__(self):
        from django.core.cache import caches

        self.backend = caches["default"]
        self.seconds = 0.0
        for name in self.METHODS:
            setattr(self.backend, name, self._timed(getattr(self.backend, name)))

    def _timed(self, method):
        def timed(*args, **kwargs):
            began = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - began

        return timed


def _wsgi_get(handler, path):
    """GET `path` through Django's WSGI handler as uWSGI would; return the status line."""
    environ = {
        "REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80", "HTTP_HOST": "127.0.0.1", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(), "wsgi.errors": io.StringIO(), "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0), "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False,
    }
    status = []
    body = handler(environ, lambda line, headers, exc_info=None: status.append((line, dict(headers))))
    try:
        b"".join(body)
    finally:
        body.close()
    return status[0]


def hitpath(path, requests, batches=5):
    """Time `requests` GETs of `path` through the WSGI handler, in batches; median microseconds each."""
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler

    handler = WSGIHandler()
    for _ in range(3):  # the first stores the page; the others warm the code paths
        line, headers = _wsgi_get(handler, path)
    clock = _CacheClock()
    totals, in_cache = [], []
    for _ in range(batches):
        clock.seconds = 0.0
        began = time.perf_counter()
        for _ in range(requests):
            _wsgi_get(handler, path)
        totals.append((time.perf_counter() - began) / requests * 1e6)
        in_cache.append(clock.seconds / requests * 1e6)
    return {
        "path": path,
        "status": line,
        "django_cache": headers.get("X-Django-Cache", "-"),
        "cache_backend": settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1],
        "middleware": len(settings.MIDDLEWARE),
        "us_per_request": round(statistics.median(totals), 1),
        "cache_us_per_request": round(statistics.median(in_cache), 1),
        "requests": requests * batches,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["pages", "culling", "hitpath"])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--urls", type=int, default=1000)
    parser.add_argument("--path", default="/bench/bare/")
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    if args.mode == "pages":
        result = pages(args.samples)
    elif args.mode == "culling":
        result = culling(args.urls)
    else:
        result = hitpath(args.path, args.requests)
    print("BENCH_JSON " + json.dumps(result))


if __name__ == "__main__":
    main()
