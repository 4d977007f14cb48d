"""Costs that grow with the catalog, measured inside one Django process (no server, no load tool).

    python -m bench.costs pages    queries and time per page, through the store's real URLs
    python -m bench.costs culling  the database cache with more pages than MAX_ENTRIES holds

bench/run.py runs each in a subprocess with the environment that picks the database and the cache
(DATABASE_URL, CACHE_URL, CACHE_MAX_ENTRIES) and reads the JSON line it prints last.
"""

import argparse
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

from shop.models import Category, Product  # noqa: E402
from shop.models import PRODUCTS_PER_PAGE  # noqa: E402


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["pages", "culling"])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--urls", type=int, default=1000)
    args = parser.parse_args()
    result = pages(args.samples) if args.mode == "pages" else culling(args.urls)
    print("BENCH_JSON " + json.dumps(result))


if __name__ == "__main__":
    main()
