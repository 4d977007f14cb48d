"""`make bench`: every layer of the store measured side by side in one run, as ratios.

    .venv/bin/python -m bench.run [--out results/bench-DATE.json] [--quick]

Seeds catalogs, starts the real servers on free loopback ports (deploy/stack.py's Stack, run from
deploy/ as shipped, with DJANGO_SETTINGS_MODULE=bench.settings), and measures with wrk:

    1  throughput   every row (Nginx ceiling, Varnish HIT, Django HIT per cache backend, uncached
                    render, bare Django, the floors, static CSS, uWSGI vs gunicorn, MariaDB, the
                    seed's variants, page views as the page's script makes them) in interleaved
                    rounds, A..Z then Z..A, so that the machine's drift hits every row alike; then
                    many visitors with cookies of their own per variant (hit rate, cache entries,
                    leaks), and headless Chromium counting what a page view sends
    2  purge        product saves until the new price is served through Varnish
    3  spike        one hot page, TTL 10 s, many connections, ours and the seed's variants:
                    renders counted by the app
    4  memory       uWSGI worker RSS over 100,000 requests, with and without recycling
    5  costs        queries and time per page at 1,000 and 100,000 products; the database
                    cache's MAX_ENTRIES and the hit rate

and writes JSON (every figure), a Markdown table and a PNG chart; see bench/README.md.
Every server is stopped by its PID at the end, whatever happens.
"""

import argparse
import concurrent.futures
import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from typing import NamedTuple

from bench import browser, load, report, vclcost, visitors
from bench.servers import AppServer, BenchStack, BuiltinVarnish
from harness.process import StackError, accepts, free_ports, http_get
from harness.script import Progress, stop_on_sigterm
from harness.servers import Memcached

ROOT = Path(__file__).resolve().parent.parent
PY = ROOT / ".venv" / "bin" / "python"
RUN_DIR = ROOT / "results" / "bench-run"
DOCS_DIR = ROOT / "docs" / "bench"
# Headers the servers write themselves: left out of the floor's copy of the page's answer.
SERVER_HEADERS = {"date", "server", "connection", "content-length", "transfer-encoding", "keep-alive"}
# The ceiling row's file: written into STATIC_ROOT (git-ignored) for Nginx, removed at the end.
CEILING_FILE = Path("bench") / "product-page.html"

# How long and how hard; BENCH_<NAME> overrides any of them (e.g. BENCH_SECONDS=5).
FULL = {
    "rounds": 5,  # interleaved rounds: A..Z, Z..A, A..Z, ...; an odd count has a true median
    "seconds": 2,  # per row per round (wrk takes whole seconds)
    "warmup": 1,  # per row, before the first round
    "connections": 32,
    "threads": 2,
    "workers": 2,  # uWSGI workers of each stack (shop.ini's), but the spike's, which sets its own 2 and 8
    "catalog": 1_000,  # products in the catalog the servers run on
    "big_catalog": 100_000,
    "spike_seconds": 35,  # per run; ten runs (five variants, 2 and 8 workers): 3.5 TTL windows
    "spike_ttl": 10,
    "spike_connections": 100,
    "rss_requests": 100_000,  # without recycling: does a worker grow?
    "rss_shipped_requests": 10_000,  # as shipped, with reload-on-rss: a shorter check of the same
    "rss_chunk": 10,  # seconds of load between two RSS samples
    "rss_cap": 120,  # seconds: the most the run without recycling may take
    "rss_shipped_cap": 30,  # ... and the one as shipped
    "purge_saves": 20,
    "cull_urls": 600,  # 4x what MAX_ENTRIES=300 holds (two rows per page)
    "samples": 20,  # timed requests per page in the costs step
    "visitors": 200,  # distinct visitors, each with their own session, CSRF and analytics cookies
    "visitor_pages": 50,  # product pages each visitor views, every visitor the same ones
    "visitor_threads": 8,  # visitors browsing at once (one connection each)
    "browser_views": 10,  # page views per visitor in headless Chromium
    "hitpath_requests": 1000,  # per batch (five batches) of the in-process time per request
    "vclcost_hits": 1000,  # Varnish HITs counted under callgrind, per VCL per round (two rounds)
}
QUICK = {
    **FULL,
    "rounds": 2,
    "seconds": 1,
    "big_catalog": 5_000,
    "spike_seconds": 12,
    "rss_requests": 3_000,
    "rss_shipped_requests": 2_000,
    "rss_chunk": 2,
    "rss_cap": 20,
    "rss_shipped_cap": 10,
    "purge_saves": 5,
    "cull_urls": 400,
    "samples": 5,
    "visitors": 100,
    "visitor_pages": 20,
    "browser_views": 4,
    "hitpath_requests": 300,
    "vclcost_hits": 200,
}

# The backends the floor stack reads the page from (bench/app.py, page_from_cache): its cache aliases.
FLOOR_READS = {"locmem": "locmem", "db": "the database cache (SQLite)", "redis": "Redis", "memcached": "memcached"}

# Each HIT against its layer's floor, measured once more in alternation: floor, row, floor, row, ...,
# floor, each run of a row divided by the mean of the floor's runs just before and after it. The
# machine's drift then cancels out, where in the matrix's rounds the two rows run seconds apart.
PAIRED = {
    "floor": ("hit_locmem", "hit_db", "hit_redis", "hit_memcached", "floor_page",
              *(f"floor_read_{key}" for key in FLOOR_READS)),
    "varnish_builtin": ("varnish_hit", "varnish_hit_gzip"),
}

# The steps of a full run, in order; `--steps` (BENCH_STEPS) picks some of them. The purge is
# measured inside the matrix step, on its SQLite stack.
STEPS = ("matrix", "spike", "rss", "costs")

MARIADB_URL = os.environ.get("BENCH_MARIADB_URL", "mysql://root@127.0.0.1:3306/shop_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")

progress = Progress("bench")


# ------------------------------------------------------------------------------------------------
# Preparation: databases, catalogs, the servers
# ------------------------------------------------------------------------------------------------


def base_env(database_url, **extra):
    """The environment of a server or a manage.py step on `database_url`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UWSGI_", "BENCH_"))}
    env.update(SHOP_DEMO="1", DJANGO_SETTINGS_MODULE="bench.settings", DATABASE_URL=database_url)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def manage(env, *args, timeout=600):
    """Run manage.py with `env`; raise with its output on failure."""
    answer = subprocess.run(
        [str(PY), "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if answer.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{(answer.stdout + answer.stderr)[-2000:]}")
    return answer.stdout


def prepare_database(env, products):
    """Migrate, create the cache table and seed `products` products."""
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "createcachetable")
    if products:
        manage(env, "seed_demo", "--products", str(products), "-v0")


def reset_mariadb(url):
    """Drop and create a bench's own MariaDB database; return the server's version (raise if absent).

    Used by `make bench` and `make bench-scaleout` (bench/scaleout.py).
    """
    import MySQLdb

    parts = urllib.parse.urlparse(url)
    name = parts.path.lstrip("/")
    if not name.endswith("bench"):
        raise RuntimeError(f"refusing to drop {name!r}: the bench database's name must end in 'bench'")
    conn = MySQLdb.connect(
        host=parts.hostname or "127.0.0.1", port=parts.port or 3306,
        user=urllib.parse.unquote(parts.username or "root"), passwd=urllib.parse.unquote(parts.password or ""),
        connect_timeout=5,
    )
    try:
        cursor = conn.cursor()
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        cursor.execute("SELECT VERSION()")
        return cursor.fetchone()[0]
    finally:
        conn.close()


def pick_slugs(db_path):
    """Two active products from the middle of the catalog: the matrix's page and the spike's."""
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("SELECT slug FROM shop_product WHERE is_active ORDER BY id").fetchall()
    return rows[len(rows) // 2][0], rows[len(rows) // 3][0]


def pick_pages(db_path, taken, plan):
    """Product slugs, in stock and apart from `taken`: two sets for the visitors, one for Chromium."""
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("SELECT slug FROM shop_product WHERE is_active AND stock > 0 ORDER BY id").fetchall()
    slugs = [row[0] for row in rows if row[0] not in taken]
    wanted = 2 * plan["visitor_pages"] + plan["browser_views"] + 1
    if len(slugs) < wanted:
        raise RuntimeError(f"the catalog has {len(slugs)} products in stock; the visitors need {wanted}")
    # Spread over the catalog, so the sets mix categories as visitors do.
    spread = [slugs[i * len(slugs) // wanted] for i in range(wanted)]
    first, second = spread[: plan["visitor_pages"]], spread[plan["visitor_pages"] : 2 * plan["visitor_pages"]]
    return {"django": first, "varnish": second, "browser": spread[2 * plan["visitor_pages"] :]}


def create_visitors(env, count):
    """Make `count` sessions with carts of their own sizes in the database of `env` (bench/visitors.py)."""
    answer = subprocess.run([str(PY), "-m", "bench.visitors", "create", "--count", str(count)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    return _json_line(answer, "bench.visitors create")


def start_all(servers):
    """Start servers in parallel; return {name: error} for those that failed."""
    failures = {}

    def start(item):
        name, server = item
        try:
            if isinstance(server, BenchStack):
                server.start(manage=False, timeout=90)
            else:
                server.start()
        except Exception as error:  # noqa: BLE001 - reported per server, the others go on
            failures[name] = str(error)[-1500:]

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(servers))) as pool:
        list(pool.map(start, servers.items()))
    return failures


def stop_all(servers):
    """Stop servers in parallel (each by its own PIDs)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(servers))) as pool:
        list(pool.map(stop_quietly, servers))


def stop_quietly(server):
    """Stop a server; report, never raise, so the others are stopped too."""
    try:
        server.stop()
    except Exception as error:  # noqa: BLE001 - keep stopping the others
        progress(f"warning: stopping {server}: {error}")


# ------------------------------------------------------------------------------------------------
# Step 1: the throughput matrix
# ------------------------------------------------------------------------------------------------


NGINX_DISK = "Nginx, from disk"
VARNISH = "Varnish, from memory"
STACK = "Nginx -> uWSGI -> Django"
DIRECT = "HTTP -> app server -> Django"
VARNISH_AND_API = "Varnish (HTML) + Nginx -> uWSGI -> Django (API)"
API = "/api/cart/"


class Row(NamedTuple):
    """One row of the matrix: what is requested, from which server, and how it is checked."""

    id: str
    label: str
    group: str
    server: str
    front: str
    path: str
    headers: tuple = ()
    check: str = ""
    travel: str = ""
    # A page view as the page's script makes it: {"api": path fetched per view or "", "cookies":
    # whether each view carries a visitor's cookies (bench/load.py's page-view script)}.
    pageview: dict | None = None


# The seed's way against ours (bench/variants.py): each variant's stack, page, and matrix rows.
VARIANTS = {
    "seed": {"label": "the seed's code", "server": "seed", "page": "/bench/seed/products/{}/",
             "hit": "seed_hit", "uncached": "seed_uncached", "floor_ratio": "seed_hit_vs_floor",
             "uncached_ratio": "seed_hit_vs_seed_uncached",
             "how": "startproject's middleware, @cache_page, the cart count from the session in the header"},
    "halfway": {"label": "the seed's advice half-way", "server": "halfway", "page": "/bench/halfway/products/{}/",
                "hit": "halfway_hit", "uncached": "halfway_uncached", "floor_ratio": "halfway_hit_vs_floor",
                "uncached_ratio": "halfway_hit_vs_halfway_uncached",
                "how": "@cache_page, the count by Ajax on every view, {% csrf_token %} still in the add form"},
    "site": {"label": "Django's per-site cache", "server": "site", "page": "/bench/site/products/{}/",
             "hit": "site_hit", "uncached": "uncached", "floor_ratio": "site_hit_vs_floor",
             "uncached_ratio": "site_hit_vs_uncached",
             "how": "UpdateCacheMiddleware/FetchFromCacheMiddleware around the store's own view and templates"},
    # The seed's page under the per-site cache: Vary: Cookie seen, and a CSRF cookie on every answer.
    "site_seed": {"label": "Django's per-site cache, the seed's template", "server": "site",
                  "page": "/bench/seed/uncached/products/{}/", "hit": None, "uncached": "seed_uncached",
                  "floor_ratio": None, "uncached_ratio": None, "visitors_only": True,
                  "how": "the per-site cache around the seed's page (cart count from the session, CSRF token)"},
    "ours": {"label": "ours, Django alone", "server": "sqlite", "page": "/products/{}/",
             "hit": "hit_db", "uncached": "uncached", "floor_ratio": "hit_db_vs_floor",
             "uncached_ratio": "hit_db_vs_uncached",
             "how": "@shared_page and SharedPageMiddleware (database cache), through Nginx"},
    "ours_varnish": {"label": "ours through Varnish", "server": "sqlite", "page": "/products/{}/", "front": "varnish",
                     "hit": "varnish_hit", "uncached": "uncached", "floor_ratio": "varnish_hit_vs_builtin",
                     "uncached_ratio": "varnish_hit_vs_uncached",
                     "how": "the same, behind Varnish with the project's VCL"},
}
SEED_VARIANTS = ("seed", "halfway", "site")


def matrix_rows(slug, css_path):
    """Return the rows of the throughput matrix, in the order of a round."""
    return [Row(*row) for row in _layer_rows(slug, css_path)] + variant_rows(slug) + pageview_rows(slug)


def variant_rows(slug):
    """The seed's variants on their own stacks (bench/variants.py), hits and uncached renders."""
    seed, halfway = f"/bench/seed/products/{slug}/", f"/bench/halfway/products/{slug}/"
    return [
        Row("seed_hit", "The seed's code: @cache_page HIT (startproject middleware)", "seed", "seed", "nginx", seed,
            (), "render_hit", STACK),
        Row("seed_uncached", "The seed's code: uncached render", "seed", "seed", "nginx",
            f"/bench/seed/uncached/products/{slug}/", (), "uncached", STACK),
        Row("halfway_hit", "Half-way: @cache_page HIT, count by Ajax, CSRF token in the page", "seed", "halfway",
            "nginx", halfway, (), "render_hit", STACK),
        Row("halfway_uncached", "Half-way: uncached render", "seed", "halfway", "nginx",
            f"/bench/halfway/uncached/products/{slug}/", (), "uncached", STACK),
        Row("site_hit", "Django's per-site cache HIT, the store's templates", "seed", "site", "nginx",
            f"/bench/site/products/{slug}/", (), "render_hit", STACK),
    ]


def pageview_rows(slug):
    """Page views as the page's script makes them: ours, the old badge, the half-way variant."""
    product, halfway = f"/products/{slug}/", f"/bench/halfway/products/{slug}/"
    return [
        Row("pv_new", "Page view, new visitor (no cookie): the HTML, nothing else", "page-view", "sqlite", "varnish",
            product, (), "varnish_hit", VARNISH, {"api": "", "cookies": False}),
        Row("pv_cart", "Page view, visitor with a cart (hint cookie): the HTML, nothing else", "page-view", "sqlite",
            "varnish", product, (), "varnish_hit", VARNISH, {"api": "", "cookies": True}),
        Row("pv_old_new", "Old badge, new visitor: the HTML + GET /api/cart/ per view", "page-view", "sqlite",
            "varnish", product, (), "varnish_hit", VARNISH_AND_API, {"api": API, "cookies": False}),
        Row("pv_old_cart", "Old badge, visitor with a cart: the HTML + GET /api/cart/ per view", "page-view",
            "sqlite", "varnish", product, (), "varnish_hit", VARNISH_AND_API, {"api": API, "cookies": True}),
        Row("pv_halfway", "Half-way, visitor with a cart: its HTML + GET /api/cart/ per view", "page-view",
            "halfway", "nginx", halfway, (), "render_hit", STACK, {"api": API, "cookies": True}),
    ]


def _layer_rows(slug, css_path):
    """The layers' rows: (id, label, group, server, front, path, headers, check, how the request travels)."""
    product = f"/products/{slug}/"
    uncached = f"/bench/uncached/products/{slug}/"
    bare = "/bench/bare/"
    return [
        ("ceiling", "Nginx: static file of the product page's size", "edge", "sqlite", "nginx",
         f"/static/{CEILING_FILE}", (), "static", NGINX_DISK),
        ("varnish_hit", "Varnish HIT: product page", "edge", "sqlite", "varnish", product, (), "varnish_hit",
         VARNISH),
        ("varnish_hit_gzip", "Varnish HIT: product page, Accept-Encoding: gzip", "edge", "sqlite", "varnish",
         product, ("Accept-Encoding: gzip",), "varnish_hit", VARNISH),
        ("varnish_builtin", "Varnish's floor: HIT with the builtin VCL only", "edge", "varnish_builtin", "varnish",
         product, (), "varnish_builtin_hit", VARNISH),
        ("hit_db", "Django HIT: database cache (SQLite)", "django-cache", "sqlite", "nginx", product, (),
         "django_hit", STACK),
        ("hit_redis", "Django HIT: Redis", "django-cache", "redis", "nginx", product, (), "django_hit", STACK),
        ("hit_memcached", "Django HIT: memcached", "django-cache", "memcached", "nginx", product, (),
         "django_hit", STACK),
        ("hit_locmem", "Django HIT: locmem", "django-cache", "locmem", "nginx", product, (), "django_hit", STACK),
        ("uncached", "Uncached product render (SQLite)", "django", "sqlite", "nginx", uncached, (), "uncached",
         STACK),
        ("bare", "Bare Django request (trivial view)", "django", "sqlite", "nginx", bare, (), "bare", STACK),
        ("floor", "Django's floor: trivial view, no middleware at all", "django", "floor", "nginx", bare, (),
         "bare", STACK),
        ("floor_page", "Django's floor answering the product page's bytes and headers, no middleware", "django",
         "floor", "nginx", "/bench/floor/page/", (), "page_copy", STACK),
        *((f"floor_read_{key}", f"Django's floor reading the page from {name} with one get, no middleware",
           "django", "floor" if key == "locmem" else f"floor_{key}", "nginx", f"/bench/floor/cache/{key}/", (),
           "page_copy", STACK) for key, name in FLOOR_READS.items()),
        ("hit_db_mr1000", "Django HIT: database cache, uWSGI with max-requests = 1000", "max-requests-1000",
         "mr1000", "nginx", product, (), "django_hit", STACK),
        ("uncached_mr1000", "Uncached product render, uWSGI with max-requests = 1000", "max-requests-1000",
         "mr1000", "nginx", uncached, (), "uncached", STACK),
        ("bare_mr1000", "Bare Django request, uWSGI with max-requests = 1000", "max-requests-1000", "mr1000",
         "nginx", bare, (), "bare", STACK),
        ("css_nginx", "CSS from Nginx", "static", "sqlite", "nginx", f"/static/{css_path}", (), "static",
         NGINX_DISK),
        ("css_django", "CSS from Django (WhiteNoise)", "static", "sqlite", "nginx", f"/django-static/{css_path}",
         (), "static", STACK),
        ("hit_mariadb", "Django HIT: database cache (MariaDB)", "mariadb", "mariadb", "nginx", product, (),
         "django_hit", STACK),
        ("uncached_mariadb", "Uncached product render (MariaDB)", "mariadb", "mariadb", "nginx", uncached, (),
         "uncached", STACK),
        ("uwsgi_hit", "uWSGI alone: Django HIT", "app-server", "uwsgi", "http", product, (), "django_hit", DIRECT),
        ("uwsgi_uncached", "uWSGI alone: uncached render", "app-server", "uwsgi", "http", uncached, (),
         "uncached", DIRECT),
        ("gunicorn_hit", "gunicorn alone: Django HIT", "app-server", "gunicorn", "http", product, (),
         "django_hit", DIRECT),
        ("gunicorn_uncached", "gunicorn alone: uncached render", "app-server", "gunicorn", "http", uncached, (),
         "uncached", DIRECT),
    ]


def base_url(server, front):
    """Return where a row's requests go: Varnish, Nginx, or an app server's own port."""
    if front == "varnish":
        return server.varnish_url
    if front == "nginx":
        return server.nginx_url
    return server.url


def count_renders(log, path):
    """Count the renders of `path` in a BENCH_RENDER_LOG file."""
    try:
        return sum(1 for line in log.read_text().splitlines() if line == path)
    except FileNotFoundError:
        return 0


def count_renders_of(log, paths):
    """Count the renders of any of `paths` in a BENCH_RENDER_LOG file."""
    wanted = set(paths)
    try:
        return sum(1 for line in log.read_text().splitlines() if line in wanted)
    except FileNotFoundError:
        return 0


def check_row(url, headers, check, server=None):
    """GET the row's URL; return None if it answers as the row says, else what was wrong."""
    request_headers = dict(h.split(": ", 1) for h in headers)
    if check == "render_hit":
        # The variants mark no hit in a header: a hit is an answer the app did not render.
        path = urllib.parse.urlsplit(url).path
        before = count_renders(server.render_log, path)
        status = http_get(url, request_headers)[0]
        rendered = count_renders(server.render_log, path) - before
        return f"status {status}" if status != 200 else (f"rendered {rendered} times" if rendered else None)
    if check == "varnish_builtin_hit":
        # urllib sends "Accept-Encoding: identity", which the builtin VCL does not normalise:
        # a copy of its own under Vary, stored by this first GET (wrk sends no such header).
        http_get(url, request_headers)
    status, answer_headers, body = http_get(url, request_headers)
    if status != 200:
        return f"status {status}"
    if check == "varnish_hit" and answer_headers.get("X-Cache") != "HIT":
        return f"X-Cache {answer_headers.get('X-Cache')}"
    # Without our VCL there is no X-Cache; a hit's X-Varnish names two transactions.
    if check == "varnish_builtin_hit" and len(answer_headers.get("X-Varnish", "").split()) != 2:
        return f"X-Varnish {answer_headers.get('X-Varnish')}"
    if check == "django_hit" and answer_headers.get("X-Django-Cache") != "HIT":
        return f"X-Django-Cache {answer_headers.get('X-Django-Cache')}"
    if check == "uncached" and answer_headers.get("X-Django-Cache"):
        return "answered from the Django cache"
    if check == "bare" and body != b"ok\n":
        return "unexpected body"
    if check == "page_copy" and not body.startswith(b"<!doctype html>"):
        return "not the page's copy"
    return None


def run_matrix(rows, servers, plan, scripts, skipped, cookies_file=None):
    """Warm and check every row, then measure them in interleaved rounds."""
    results = {}
    active = []
    for row in rows:
        entry = {"label": row.label, "group": row.group, "server": row.server, "front": row.front,
                 "path": row.path, "travel": row.travel, "headers": list(row.headers), "rounds": []}
        if row.pageview:
            entry["pageview"] = row.pageview
        results[row.id] = entry
        if row.server in skipped:
            entry["skipped"] = skipped[row.server]
            progress(f"matrix: {row.id} skipped ({skipped[row.server][:80]})")
            continue
        server = servers[row.server]
        url = base_url(server, row.front) + row.path
        entry["url"] = url
        measure_row(row, url, server, plan["warmup"], plan, scripts, cookies_file)
        problem = next(filter(None, (check_row(url, row.headers, row.check, server) for _ in range(4))), None)
        if problem:
            entry["check"] = problem
            progress(f"matrix: warning: {row.id} after warm-up: {problem}")
        status, answer_headers, body = http_get(url, dict(h.split(": ", 1) for h in row.headers))
        entry["response_bytes"] = len(body)
        active.append((row, url, server))
    progress(f"matrix: {len(active)} rows warmed; {plan['rounds']} rounds of {plan['seconds']} s each")
    for number in range(plan["rounds"]):
        order = active if number % 2 == 0 else active[::-1]
        for row, url, server in order:
            figures = measure_row(row, url, server, plan["seconds"], plan, scripts, cookies_file)
            figures["round"] = number + 1
            results[row.id]["rounds"].append(figures)
            views = f"  {figures['views_per_s']:8.0f} views/s" if row.pageview else ""
            progress(
                f"matrix round {number + 1}/{plan['rounds']}: {row.id:18} {figures['rps']:9.0f} req/s  "
                f"p50 {figures['p50_ms']:7.2f} ms  p99 {figures['p99_ms']:7.2f} ms  errors {figures['errors']}{views}"
            )
    for entry in results.values():
        summarise_rounds(entry)
    return results


def run_paired(rows, results, plan, scripts):
    """Measure each row of PAIRED in alternation with its floor; return its bracketed ratios."""
    by_id = {row.id: row for row in rows}
    out = {}
    for floor_id, ids in PAIRED.items():
        todo = [by_id[i] for i in ids if "url" in results.get(i, {})]
        if "url" not in results.get(floor_id, {}) or not todo:
            continue
        floor = by_id[floor_id]
        progress(f"paired: {', '.join(row.id for row in todo)}, each between two runs of {floor_id}, "
                 f"{plan['rounds']} times")

        def rate(row):
            return load.run(results[row.id]["url"], plan["seconds"], scripts["done"], plan["connections"],
                            plan["threads"], row.headers)["rps"]

        runs = []
        for _ in range(plan["rounds"]):
            for row in todo:
                runs += [(floor_id, rate(floor)), (row.id, rate(row))]
        runs.append((floor_id, rate(floor)))
        for row in todo:
            found = [(rps, (runs[i - 1][1] + runs[i + 1][1]) / 2) for i, (name, rps) in enumerate(runs)
                     if name == row.id]
            by_run = [rps / floor_rps for rps, floor_rps in found if floor_rps]
            out[row.id] = {"of": row.id, "to": floor_id, "median": statistics.median(by_run), "min": min(by_run),
                           "max": max(by_run), "runs": len(by_run),
                           "rps": statistics.median(rps for rps, _ in found),
                           "floor_rps": statistics.median(floor_rps for _, floor_rps in found)}
            progress(f"paired: {row.id:20} {out[row.id]['median']:.3f}x {floor_id} "
                     f"({out[row.id]['min']:.2f}–{out[row.id]['max']:.2f}x)")
    return out


def measure_row(row, url, server, seconds, plan, scripts, cookies_file):
    """Load one row for `seconds`; a page-view row also counts the requests that reached Django."""
    if not row.pageview:
        return load.run(url, seconds, scripts["done"], plan["connections"], plan["threads"], row.headers)
    env = {"BENCH_PAGE": row.path, "BENCH_API": row.pageview["api"],
           "BENCH_COOKIES": str(cookies_file) if row.pageview["cookies"] else ""}
    access_log = server.log_dir / "nginx-access.log"
    time.sleep(0.2)  # the previous row's last lines reach the log before this row's first
    offset = access_log.stat().st_size
    figures = load.run(url, seconds, scripts["pageview"], plan["connections"], plan["threads"], env=env)
    time.sleep(0.2)  # Nginx writes a line once its answer is sent
    counted = browser.django_requests(access_log, offset)
    # The share of page views among the requests sent, applied to those answered.
    share = figures["views"] / max(1, figures["views"] + figures["calls"])
    figures.update(page_views=figures["requests"] * share, views_per_s=figures["rps"] * share,
                   django=counted["django"], django_api=counted["api"], django_pages=counted["pages"])
    return figures


def summarise_rounds(entry):
    """Add median, min and max of req/s, p50 and p99 over a row's rounds."""
    rounds = entry["rounds"]
    if not rounds:
        return
    for key in ("rps", "p50_ms", "p99_ms"):
        values = [r[key] for r in rounds]
        entry[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    entry["errors"] = sum(r["errors"] for r in rounds)
    entry["requests"] = sum(r["requests"] for r in rounds)
    if "views_per_s" in rounds[0]:
        values = [r["views_per_s"] for r in rounds]
        entry["views_per_s"] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
        entry["page_views"] = sum(r["page_views"] for r in rounds)
        for key in ("django", "django_api", "django_pages", "views", "calls"):
            entry[key] = sum(r[key] for r in rounds)
        entry["requests_per_view"] = (entry["views"] + entry["calls"]) / entry["views"] if entry["views"] else None
        # Per view sent, not per view answered: Nginx also logs the requests wrk left in flight.
        entry["django_per_1000_views"] = 1000 * entry["django"] / entry["views"] if entry["views"] else None


# Ratios of two rows, taken round by round (both rows ran minutes apart at most).
RATIOS = {
    "varnish_vs_ceiling": ("varnish_hit", "ceiling"),
    "varnish_gzip_vs_ceiling": ("varnish_hit_gzip", "ceiling"),
    "varnish_builtin_vs_ceiling": ("varnish_builtin", "ceiling"),
    "floor_vs_uncached": ("floor", "uncached"),
    "hit_db_vs_uncached": ("hit_db", "uncached"),
    "hit_redis_vs_uncached": ("hit_redis", "uncached"),
    "hit_memcached_vs_uncached": ("hit_memcached", "uncached"),
    "hit_locmem_vs_uncached": ("hit_locmem", "uncached"),
    "bare_vs_uncached": ("bare", "uncached"),
    "hit_db_vs_bare": ("hit_db", "bare"),
    "hit_db_mr1000_vs_uncached_mr1000": ("hit_db_mr1000", "uncached_mr1000"),
    "bare_mr1000_vs_uncached_mr1000": ("bare_mr1000", "uncached_mr1000"),
    "hit_db_mr1000_vs_hit_db": ("hit_db_mr1000", "hit_db"),
    "css_nginx_vs_django": ("css_nginx", "css_django"),
    "hit_mariadb_vs_uncached_mariadb": ("hit_mariadb", "uncached_mariadb"),
    "uncached_mariadb_vs_sqlite": ("uncached_mariadb", "uncached"),
    "hit_mariadb_vs_sqlite": ("hit_mariadb", "hit_db"),
    "gunicorn_vs_uwsgi_hit": ("gunicorn_hit", "uwsgi_hit"),
    "gunicorn_vs_uwsgi_uncached": ("gunicorn_uncached", "uwsgi_uncached"),
    "uwsgi_hit_vs_uwsgi_uncached": ("uwsgi_hit", "uwsgi_uncached"),
    # Every Django and Varnish row against its floor: the least that layer costs on this machine.
    "varnish_hit_vs_builtin": ("varnish_hit", "varnish_builtin"),
    "varnish_gzip_vs_builtin": ("varnish_hit_gzip", "varnish_builtin"),
    "hit_db_vs_floor": ("hit_db", "floor"),
    "hit_redis_vs_floor": ("hit_redis", "floor"),
    "hit_memcached_vs_floor": ("hit_memcached", "floor"),
    "hit_locmem_vs_floor": ("hit_locmem", "floor"),
    "hit_mariadb_vs_floor": ("hit_mariadb", "floor"),
    "bare_vs_floor": ("bare", "floor"),
    # The floor answering a HIT's own bytes and headers: what the answer itself costs the servers.
    "floor_page_vs_floor": ("floor_page", "floor"),
    "hit_db_vs_floor_page": ("hit_db", "floor_page"),
    "hit_redis_vs_floor_page": ("hit_redis", "floor_page"),
    "hit_memcached_vs_floor_page": ("hit_memcached", "floor_page"),
    "hit_locmem_vs_floor_page": ("hit_locmem", "floor_page"),
    "uncached_vs_floor": ("uncached", "floor"),
    # The seed's variants: against the floor, and against their own uncached render.
    "seed_hit_vs_floor": ("seed_hit", "floor"),
    "halfway_hit_vs_floor": ("halfway_hit", "floor"),
    "site_hit_vs_floor": ("site_hit", "floor"),
    "seed_hit_vs_seed_uncached": ("seed_hit", "seed_uncached"),
    "halfway_hit_vs_halfway_uncached": ("halfway_hit", "halfway_uncached"),
    "site_hit_vs_uncached": ("site_hit", "uncached"),
    "varnish_hit_vs_uncached": ("varnish_hit", "uncached"),
    # Page views per second (not requests) against the Varnish HIT, and ours against the old badge.
    "pv_new_vs_varnish_hit": ("pv_new", "varnish_hit"),
    "pv_cart_vs_varnish_hit": ("pv_cart", "varnish_hit"),
    "pv_old_new_vs_varnish_hit": ("pv_old_new", "varnish_hit"),
    "pv_old_cart_vs_varnish_hit": ("pv_old_cart", "varnish_hit"),
    "pv_halfway_vs_varnish_hit": ("pv_halfway", "varnish_hit"),
    "pv_new_vs_pv_old_new": ("pv_new", "pv_old_new"),
    "pv_cart_vs_pv_old_cart": ("pv_cart", "pv_old_cart"),
}


def _rate(figures):
    """Return a round's rate: page views per second for a page-view row, else requests per second."""
    return figures.get("views_per_s", figures["rps"])


def ratios(rows):
    """Return each ratio of RATIOS: median, min and max of its per-round values."""
    out = {}
    for name, (top, bottom) in RATIOS.items():
        a, b = rows.get(top, {}).get("rounds"), rows.get(bottom, {}).get("rounds")
        if not a or not b:
            continue
        by_round = [_rate(x) / _rate(y) for x, y in zip(a, b, strict=False) if _rate(y)]
        if by_round:
            out[name] = {"of": top, "to": bottom, "median": statistics.median(by_round),
                         "min": min(by_round), "max": max(by_round)}
    return out


# ------------------------------------------------------------------------------------------------
# Step 2: purge latency
# ------------------------------------------------------------------------------------------------


def measure_purge(stack, slug, saves):
    """Run bench/purge.py with the stack's environment; add median, max and p99 (seconds)."""
    env = stack.environ()
    answer = subprocess.run(
        [str(PY), "-m", "bench.purge", "--url", stack.varnish_url, "--slug", slug, "--saves", str(saves)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60 + saves * 15,
    )
    data = _json_line(answer, "bench.purge")
    seconds = sorted(s["seconds"] for s in data["samples"])
    data["median_s"] = statistics.median(seconds)
    data["max_s"] = seconds[-1]
    # Nearest rank: with 20 saves the 99th percentile is the slowest one.
    data["p99_s"] = seconds[min(len(seconds) - 1, int(0.99 * len(seconds)))]
    return data


def _json_line(answer, what):
    line = next((ln for ln in answer.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if answer.returncode or line is None:
        raise RuntimeError(f"{what} failed ({answer.returncode}):\n{(answer.stdout + answer.stderr)[-2000:]}")
    return json.loads(line.removeprefix("BENCH_JSON "))


# ------------------------------------------------------------------------------------------------
# Step 3: the spike
# ------------------------------------------------------------------------------------------------


def run_spike(stack, front, workers, path, log, plan, scripts, variant=None):
    """Load one hot page from many connections; count the renders the app logged meanwhile."""
    url = (stack.varnish_url if front == "varnish" else stack.nginx_url) + path
    # The page is in the caches when the spike starts, as a hot page is: the renders counted
    # are those its expiries cost, not the first fill.
    http_get(url)
    _status, headers, _body = http_get(url)
    # The copy served now was stored `Age` seconds ago: its first expiry may come that much sooner.
    began = time.monotonic() - int(headers.get("Age") or 0)
    before = count_renders(log, path)
    figures = load.run(url, plan["spike_seconds"], scripts["done"], plan["spike_connections"], plan["threads"])
    time.sleep(0.3)  # a render still running when wrk stopped writes its line when it ends
    renders = count_renders(log, path) - before
    # TTL windows from the storing of the warm copy to the last count: the most expiries the
    # page could have had in the run.
    windows = (time.monotonic() - began) / plan["spike_ttl"]
    ours = variant is None
    through = "Varnish" if front == "varnish" else "Django alone (Nginx -> uWSGI)"
    return {
        "through": through if ours else f"{VARIANTS[variant]['label']} (Nginx -> uWSGI)",
        "variant": ("ours_varnish" if front == "varnish" else "ours") if ours else variant,
        "front": front,
        "workers": workers,
        "ttl_s": plan["spike_ttl"],
        "connections": plan["spike_connections"],
        "seconds": figures["seconds"],
        "requests": figures["requests"],
        "rps": figures["rps"],
        "p99_ms": figures["p99_ms"],
        "errors": figures["errors"],
        "renders": renders,
        "windows": windows,
        "renders_per_window": renders / windows,
        # The seed's variants have no limit: they are shown beside ours.
        "limit": (1.0 if front == "varnish" else 1.2) if ours else None,
    }


# ------------------------------------------------------------------------------------------------
# Step 4: worker memory
# ------------------------------------------------------------------------------------------------


def run_rss(stack, label, requests, cap, paths_file, plan, scripts):
    """Load many URLs in chunks until `requests` are served; sample the workers' RSS after each."""
    samples = []

    def sample(requests):
        rss = [kib / 1024 for kib in stack.worker_rss_kib()]
        samples.append({"requests": requests, "rss_mib": [round(r, 1) for r in rss],
                        "mean_mib": round(statistics.mean(rss), 1) if rss else None,
                        "pids": stack.worker_pids()})

    sample(0)
    total, errors, began = 0, 0, time.monotonic()
    while total < requests and time.monotonic() - began < cap:
        figures = load.run(stack.nginx_url + "/", plan["rss_chunk"], scripts["paths"], plan["connections"],
                           plan["threads"], paths_file=paths_file)
        total += figures["requests"]
        errors += figures["errors"]
        sample(total)
    # Warm-up: the first tenth of the requests (every page rendered and cached once by then).
    warm = next((s for s in samples if s["requests"] >= requests / 10), samples[-1])
    last = samples[-1]
    pids_seen = {pid for s in samples for pid in s["pids"]}
    return {
        "label": label,
        "recycling": stack.recycle,
        "requests": total,
        "planned": requests,
        "seconds": round(time.monotonic() - began, 1),
        "errors": errors,
        "samples": samples,
        "warm_mib": warm["mean_mib"],
        "end_mib": last["mean_mib"],
        "max_mib": max(max(s["rss_mib"] or [0]) for s in samples),
        "growth": (last["mean_mib"] - warm["mean_mib"]) / warm["mean_mib"] if warm["mean_mib"] else None,
        "workers_started": len(pids_seen),
    }


# ------------------------------------------------------------------------------------------------
# Step 5: costs that grow (in-process, bench/costs.py)
# ------------------------------------------------------------------------------------------------


def run_costs(env, *args):
    """Run bench/costs.py in a process of its own, with `env` choosing database and cache."""
    answer = subprocess.run([str(PY), "-m", "bench.costs", *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=900)
    return _json_line(answer, f"bench.costs {' '.join(args)}")


# ------------------------------------------------------------------------------------------------
# Targets, machine, output
# ------------------------------------------------------------------------------------------------


def targets(result):
    """Each target against its measured figure: met True/False, or None if not measured."""
    r, rows, out = result.get("ratios", {}), result.get("rows", {}), []

    def add(name, measured, met, goal, beside=None):
        out.append({"target": name, "goal": goal, "measured": measured, "met": met, "limit": beside})

    def median(key):
        return r.get(key, {}).get("median")

    def ratio(key, floor, name, beside=None):
        value = median(key)
        add(name, None if value is None else _shown(value, floor), None if value is None else value >= floor,
            f">= {floor}x", beside)

    def ratio_text(key, label):
        value = median(key)
        return None if value is None else f"{value:.2f}x {label}"

    def rps_text(row_id):
        rps = rows.get(row_id, {}).get("rps")
        return f"{rps['median']:,.0f} req/s" if rps else None

    def joined(*parts):
        return "; ".join(p for p in parts if p) or None

    # Beside a ratio target stands what bounds it: the same ratio for the floor of that layer (Varnish
    # with nothing but its builtin VCL; Django answering `ok` with no middleware at all). A target
    # above its floor cannot be met here by any code or VCL.
    varnish_floor = "(Varnish, builtin VCL only)"
    django_floor = "(Django, trivial view, no middleware)"
    ratio("varnish_vs_ceiling", 0.7, "Varnish HIT vs the Nginx static ceiling",
          ratio_text("varnish_builtin_vs_ceiling", varnish_floor))
    for key, goal, name in (("db", 6, "database cache"), ("redis", 6, "Redis"), ("memcached", 6, "memcached"),
                            ("locmem", 9, "locmem")):
        ratio(f"hit_{key}_vs_uncached", goal, f"Django HIT, {name}, vs the uncached render",
              ratio_text("floor_vs_uncached", django_floor))
    # Every HIT against its own layer's floor, measured in alternation with it (run_paired); beside
    # it what bounds it: the floor doing what such a HIT cannot do without, one read of that cache.
    paired = result.get("paired", {})

    def paired_ratio(row_id, goal, name, beside):
        value = paired.get(row_id, {}).get("median")
        add(name, None if value is None else _shown(value, goal), None if value is None else value >= goal,
            f">= {goal}x", beside)

    def paired_text(row_id, label):
        found = paired.get(row_id)
        return None if found is None else f"{found['median']:.2f}x {label}"

    vcl_cost = result.get("vcl_cost")
    paired_ratio("varnish_hit", 0.9, "Varnish HIT through the project's VCL vs the builtin-VCL floor",
                 joined(rps_text("varnish_hit"), f"floor {rps_text('varnish_builtin')}",
                        ratio_text("varnish_hit_vs_builtin", "in the matrix's rounds"),
                        vcl_cost and f"{vcl_cost['ratio']:.2f}x the floor's instructions per hit in varnishd "
                                     f"({vcl_cost['shop']:,.0f} against {vcl_cost['builtin']:,.0f}, callgrind)"))
    for key, goal, name in (("locmem", 0.9, "locmem"), ("db", 0.75, "database cache"), ("redis", 0.7, "Redis"),
                            ("memcached", 0.7, "memcached")):
        paired_ratio(f"hit_{key}", goal, f"Django HIT, {name}, vs the Django floor",
                     joined(paired_text(f"floor_read_{key}", f"the floor plus one get of the page from {name}"),
                            rps_text(f"hit_{key}"), f"floor {rps_text('floor')}",
                            ratio_text(f"hit_{key}_vs_floor", "in the matrix's rounds"),
                            ratio_text(f"hit_{key}_vs_uncached", "the uncached render")))
    spike_targets(result, add)
    visitor_targets(result, add)
    pageview_targets(result, add, ratio, rps_text)
    ratio("css_nginx_vs_django", 10, "Static CSS: Nginx vs Django (WhiteNoise)")
    costs = result.get("costs", {}).get("pages", {})
    small, big = costs.get("small"), costs.get("big")
    if small and big:
        q_small, q_big = small["pages"]["product"]["queries"], big["pages"]["product"]["queries"]
        add("Queries per uncached product page: constant, at most 5",
            f"{q_small} at {small['products']:,} products, {q_big} at {big['products']:,}",
            q_small == q_big and q_big <= 5, "constant, <= 5")
    purge = result.get("purge")
    if purge:
        add("Purge latency, p99 (slowest of the saves)", f"{purge['p99_s'] * 1000:.0f} ms "
            f"(median {purge['median_s'] * 1000:.0f} ms, {len(purge['samples'])} saves)",
            purge["p99_s"] < 1.0, "< 1 s")
    for run in result.get("rss", []):
        # With max-requests a worker never lives long enough to grow: only the run without
        # recycling says whether the code leaks.
        if run["growth"] is None or run["recycling"]:
            continue
        add(f"Worker RSS flat after warm-up, {run['requests']:,} requests, no recycling",
            f"{run['growth'] * 100:+.1f}% ({run['warm_mib']:.0f} -> {run['end_mib']:.0f} MiB)",
            abs(run["growth"]) <= 0.10, "within 10%")
    return out


def _shown(value, goal):
    """Return a ratio as "0.87x"; with three decimals when two would round it onto its goal."""
    return f"{value:.3f}x" if f"{value:.2f}" == f"{goal:.2f}" else f"{value:.2f}x"


def _renders_text(run):
    return f"{run['renders_per_window']:.2f} ({run['renders']} in {run['seconds']:.0f} s)"


def spike_targets(result, add):
    """Ours renders per TTL window under the spike, with the seed's code at the same workers beside it."""
    runs = result.get("spike", [])
    seed = {run["workers"]: run for run in runs if run.get("variant") == "seed"}
    for run in runs:
        if run.get("limit") is None:
            continue  # a variant of the seed's, shown beside ours
        beside = seed.get(run["workers"])
        add(f"Renders per {run['ttl_s']} s window, {run['through']}, {run['workers']} workers", _renders_text(run),
            run["renders_per_window"] <= run["limit"], f"<= {run['limit']}",
            beside and f"the seed's code, {beside['workers']} workers: {_renders_text(beside)}")


def visitor_targets(result, add):
    """Ours hit rate with many cookie-carrying visitors, and its leaks; the seed's code beside it."""
    runs = result.get("visitors", {})
    seed = runs.get("seed")
    for key in ("ours", "ours_varnish"):
        run = runs.get(key)
        if not run:
            continue
        leaks = sum(run["leaks"].values())
        add(f"Hit rate with {run['visitors']} visitors with cookies of their own, {run['label']}, and leaks",
            f"{run['hit_rate'] * 100:.1f}% ({run['renders']} renders in {run['views']:,} views), {leaks} leaks",
            run["hit_rate"] >= 0.99 and leaks == 0, ">= 99%, 0 leaks",
            seed and f"the seed's code: {seed['hit_rate'] * 100:.1f}%, {sum(seed['leaks'].values()):,} leaks")


def pageview_targets(result, add, ratio, rps_text):
    """Page views as the browser makes them: their rate, and how many reach Django."""
    rows = result.get("rows", {})
    old = rows.get("pv_old_new", {}).get("views_per_s")
    ratio("pv_new_vs_varnish_hit", 0.5, "Page views/s as a browser makes them, new visitors, vs the Varnish HIT",
          "; ".join(filter(None, [rps_text("varnish_hit") and f"Varnish HIT {rps_text('varnish_hit')}",
                                  old and f"old badge: {old['median']:,.0f} views/s"])))
    for row_id, who in (("pv_new", "new visitors"), ("pv_cart", "visitors with a cart, browsing")):
        row = rows.get(row_id, {})
        if row.get("django_per_1000_views") is None:
            add(f"Django requests per 1,000 page views, {who}", None, None, "0")
            continue
        old_row = rows.get(row_id.replace("pv_", "pv_old_"), {})
        # A page's refresh once per TTL is a Django request too: it is per page, not per view.
        add(f"Django requests per 1,000 page views, {who}",
            f"{row['django_per_1000_views']:.3f} ({row['django_api']} to the API, {row['django_pages']} for pages, "
            f"in {row['views']:,} views)", row["django_api"] == 0 and row["django_per_1000_views"] < 0.05,
            "0", old_row.get("django_per_1000_views") is not None
            and f"old badge: {old_row['django_per_1000_views']:,.0f}")


def machine_info(memcached_version=None, mariadb_version=None):
    def command(*args):
        try:
            answer = subprocess.run(args, capture_output=True, text=True, timeout=10)
            return (answer.stdout + answer.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return None

    meminfo = Path("/proc/meminfo").read_text().split("\n")[0].split()
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    packages = ["Django", "uWSGI", "gunicorn", "whitenoise", "redis", "pymemcache", "mysqlclient", "matplotlib"]
    redis_version = None
    with contextlib.suppress(Exception):
        import redis

        redis_version = redis.Redis.from_url(REDIS_URL, socket_timeout=2).info("server")["redis_version"]
    info = {
        "cores": os.cpu_count(),
        "memory_gib": round(int(meminfo[1]) / 1024 / 1024, 1),
        "cpu": cpu,
        "kernel": platform.release(),
        "os": command("sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"),
        "python": platform.python_version(),
        "nginx": command("/usr/sbin/nginx", "-v"),
        "varnish": command("/usr/sbin/varnishd", "-V"),
        "wrk": load.version(),
        "sqlite": sqlite3.sqlite_version,
        "mariadb": mariadb_version,
        "redis": redis_version,
        "memcached": memcached_version,
        "loadavg_start": os.getloadavg(),
    }
    info["packages"] = {name: _package_version(name) for name in packages}
    return info


def git_state():
    """Return the commit measured and how many files of the working tree differ from it."""
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    return {"commit": git("rev-parse", "--short", "HEAD").strip() or None,
            "changed_files": len(git("status", "--porcelain", "--untracked-files=no").splitlines())}


def _package_version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def write_outputs(result, out):
    """Write the JSON, the Markdown and the PNG; after a full run, copy them to docs/bench/."""
    out.parent.mkdir(parents=True, exist_ok=True)
    md_path, png_path = out.with_suffix(".md"), out.with_suffix(".png")
    chart_ok = report.chart(result, png_path)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    md_path.write_text(report.markdown(result, png_path.name if chart_ok else None))
    if result["quick"] or result["steps"] != list(STEPS):
        return md_path, png_path  # the committed figures stay those of a full run
    DOCS_DIR.mkdir(parents=True, exist_ok=True)
    (DOCS_DIR / "results.md").write_text(report.markdown(result, "chart.png" if chart_ok else None))
    if chart_ok:
        shutil.copyfile(png_path, DOCS_DIR / "chart.png")
    (DOCS_DIR / "results.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    return md_path, png_path


# ------------------------------------------------------------------------------------------------
# The run
# ------------------------------------------------------------------------------------------------


class Bench:
    """One run: the steps in order, the servers they start, and the result they fill in."""

    def __init__(self, plan, quick, steps=STEPS):
        self.plan = plan
        self.quick = quick
        self.steps = steps
        self.run_dir = RUN_DIR
        self.cleanup = contextlib.ExitStack()
        self.result = {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                       "quick": quick, "steps": list(steps), "plan": plan, "errors": [], "notes": []}
        self.main_db = self.run_dir / "db.sqlite3"
        self.small_db = self.run_dir / "costs-small.sqlite3"
        self.big_db = self.run_dir / "costs-big.sqlite3"
        self.prefix = f"bench{os.getpid()}"
        self.mariadb_version = None
        self.memcached = None
        self.scripts = None

    def sqlite_url(self, path):
        return f"sqlite:///{path}"

    # --- the steps ---------------------------------------------------------------------------

    def run(self):
        with self.cleanup:
            self.prepare()
            for step in STEPS:
                if step in self.steps:
                    getattr(self, f"step_{step}")()
        self.result["duration_s"] = round(time.monotonic() - progress.started, 1)
        self.result["machine"]["loadavg_end"] = os.getloadavg()
        self.result["targets"] = targets(self.result)
        return self.result

    def prepare(self):
        progress("prepare: run folder, catalogs, collectstatic")
        if self.run_dir.exists():
            shutil.rmtree(self.run_dir)
        self.run_dir.mkdir(parents=True)
        self.scripts = load.write_scripts(self.run_dir / "lua")
        main_env = base_env(self.sqlite_url(self.main_db))
        jobs = {
            "collectstatic": lambda: manage(main_env, "collectstatic", "--noinput", "-v0"),
            "sqlite catalog": lambda: prepare_database(main_env, self.plan["catalog"]),
            "small costs catalog": lambda: prepare_database(
                base_env(self.sqlite_url(self.small_db), CACHE_URL="dummycache://"), self.plan["catalog"]),
            "big costs catalog (schema)": lambda: prepare_database(
                base_env(self.sqlite_url(self.big_db), CACHE_URL="dummycache://"), 0),
            "mariadb catalog": self.prepare_mariadb,
        }
        with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
            futures = {name: pool.submit(job) for name, job in jobs.items()}
        for name, future in futures.items():
            if future.exception():
                if name == "mariadb catalog":
                    self.result["notes"].append(f"MariaDB rows skipped: {future.exception()}")
                    progress(f"prepare: MariaDB unavailable, its rows are skipped: {future.exception()}")
                else:
                    raise future.exception()
        self.slug, self.spike_slug = pick_slugs(self.main_db)
        self.pages = pick_pages(self.main_db, (self.slug, self.spike_slug), self.plan)
        self.sessions = create_visitors(base_env(self.sqlite_url(self.main_db)), self.plan["visitors"])
        self.cookies_file = self.run_dir / "visitor-cookies.txt"
        self.cookies_file.write_text("".join(v.cookie_header() + "\n" for v in visitors.make_visitors(self.sessions)))
        manifest = json.loads((ROOT / "staticfiles" / "staticfiles.json").read_text())
        self.css_path = manifest["paths"]["shop/store.css"]
        self.result["pages"] = {"product": f"/products/{self.slug}/", "spike": f"/products/{self.spike_slug}/",
                                "css": f"/static/{self.css_path}"}
        self.start_memcached()
        self.result["machine"] = machine_info(self.memcached and self.memcached.version(), self.mariadb_version)
        self.result["git"] = git_state()

    def prepare_mariadb(self):
        self.mariadb_version = reset_mariadb(MARIADB_URL)
        prepare_database(base_env(MARIADB_URL), self.plan["catalog"])

    def start_memcached(self):
        if not shutil.which("memcached"):
            self.result["notes"].append("memcached is not installed: its row is skipped (make bench installs it)")
            return
        port = 11211
        if accepts(port):
            # A memcached of the system's (or someone's) is there: run ours beside it.
            port = free_ports(1)[0]
            self.result["notes"].append(f"127.0.0.1:11211 was busy; the bench's memcached ran on {port}")
        self.memcached = Memcached(self.run_dir / "memcached", port, memory=256)
        self.cleanup.callback(stop_quietly, self.memcached)
        self.memcached.start()
        progress(f"prepare: memcached on 127.0.0.1:{port} (pid {self.memcached.proc.pid})")

    def stack(self, name, database_url, processes=None, recycle=True, max_requests=None, **env):
        varnish_port, nginx_port = free_ports(2)
        env = {"BENCH_CACHE_PREFIX": self.prefix, **env}
        return BenchStack(
            ROOT, self.run_dir / name, varnish_port=varnish_port, nginx_port=nginx_port,
            processes=processes or self.plan["workers"],
            env=base_env(database_url, **env), recycle=recycle, max_requests=max_requests,
        )

    def floor_caches(self):
        """The floor stack's cache aliases: (key, CACHE_URL) per backend of FLOOR_READS."""
        found = [("locmem", "locmem://"), ("db", "dbcache://shop_cache"), ("redis", REDIS_URL)]
        if self.memcached:
            found.append(("memcached", f"pymemcache://127.0.0.1:{self.memcached.port}"))
        return found

    def variant_stack(self, variant, name, processes=None, **env):
        """A stack of one of the seed's variants: its own cache prefix and render log, the main catalog."""
        return self.stack(name, self.sqlite_url(self.main_db), processes=processes, BENCH_VARIANT=variant,
                          BENCH_CACHE_PREFIX=self.variant_prefix(name),
                          BENCH_RENDER_LOG=self.run_dir / f"renders-{name}.log", **env)

    def variant_prefix(self, name):
        return f"{self.prefix}-{name}"

    def start_servers(self, servers, phase):
        for server in servers.values():
            self.cleanup.callback(stop_quietly, server)
        began = time.monotonic()
        failures = start_all(servers)
        progress(f"{phase}: {len(servers) - len(failures)} of {len(servers)} servers up in "
                 f"{time.monotonic() - began:.1f} s")
        for name, error in failures.items():
            progress(f"{phase}: {name} did not start: {error.splitlines()[0] if error else ''}")
        return failures

    def step_matrix(self):
        sqlite = self.sqlite_url(self.main_db)
        servers = {
            # Its render log counts the visitors' misses; an append per render, none per hit.
            "sqlite": self.stack("sqlite", sqlite, BENCH_RENDER_LOG=self.run_dir / "renders-sqlite.log"),
            "redis": self.stack("redis", sqlite, CACHE_URL=REDIS_URL),
            "locmem": self.stack("locmem", sqlite, CACHE_URL="locmem://"),
            "mr1000": self.stack("mr1000", sqlite, max_requests=1000),
            "floor": self.stack("floor", sqlite, CACHE_URL="locmem://", BENCH_NO_MIDDLEWARE=1,
                                BENCH_PAGE_COPY=self.run_dir / "page-copy.json",
                                BENCH_FLOOR_CACHES=",".join(f"{key}={url}" for key, url in self.floor_caches())),
        }
        servers["varnish_builtin"] = BuiltinVarnish(self.run_dir / "varnish-builtin", free_ports(1)[0],
                                                    servers["sqlite"].nginx_port)
        if self.memcached:
            servers["memcached"] = self.stack("memcached", sqlite,
                                              CACHE_URL=f"pymemcache://127.0.0.1:{self.memcached.port}")
        if self.mariadb_version:
            servers["mariadb"] = self.stack("mariadb", MARIADB_URL)
        for kind, port in zip(("uwsgi", "gunicorn"), free_ports(2), strict=True):
            servers[kind] = AppServer(kind, self.run_dir / f"{kind}.log", port, base_env(sqlite))
        for variant in SEED_VARIANTS:
            servers[variant] = self.variant_stack(variant, variant)
        skipped = self.start_servers(servers, "matrix")
        if "sqlite" in skipped:
            raise StackError(f"the main stack did not start: {skipped['sqlite']}")
        if not self.memcached:
            skipped["memcached"] = "memcached is not installed"
        # The floor's reads from each backend run on the floor stack, when that backend runs.
        readers = {}
        for key in ("db", "redis", "memcached"):
            if key in skipped or "floor" in skipped:
                skipped[f"floor_{key}"] = skipped.get(key) or skipped["floor"]
            else:
                readers[f"floor_{key}"] = servers["floor"]
        if not self.mariadb_version:
            skipped["mariadb"] = "MariaDB is not reachable"
        self.write_ceiling_file(servers["sqlite"])
        rows = matrix_rows(self.slug, self.css_path)
        self.result["rows"] = run_matrix(rows, {**servers, **readers}, self.plan, self.scripts, skipped,
                                         self.cookies_file)
        self.result["ratios"] = ratios(self.result["rows"])
        self.result["paired"] = run_paired(rows, self.result["rows"], self.plan, self.scripts)
        self.measure_vcl_cost(servers["sqlite"], servers["varnish_builtin"])
        self.result["respawns"] = {
            name: server.respawns() for name, server in servers.items() if isinstance(server, BenchStack)
        }
        progress(f"matrix: uWSGI workers respawned per stack: {self.result['respawns']}")
        self.result["variants"] = VARIANTS
        self.measure_visitors(servers, skipped)
        self.measure_browser(servers["sqlite"])
        stop_all([server for name, server in servers.items() if name != "sqlite"])
        self.step_purge(servers["sqlite"])
        stop_quietly(servers["sqlite"])

    def measure_vcl_cost(self, stack, builtin):
        """Count instructions per Varnish HIT under the floor's VCL and the project's (bench/vclcost.py)."""
        progress(f"vclcost: Varnish under callgrind, the builtin VCL and the project's, "
                 f"{self.plan['vclcost_hits']} hits each, twice")
        try:
            self.result["vcl_cost"] = vclcost.measure(
                self.run_dir, free_ports(1)[0], builtin.vcl, stack.vcl_file,
                f"/products/{self.slug}/", self.plan["vclcost_hits"], progress=progress)
        except Exception as error:  # noqa: BLE001 - recorded; the other steps go on
            self.fail("vclcost", error)

    def measure_visitors(self, servers, skipped):
        """Every variant browsed by the same visitors: hit rate, cache entries created, leaks."""
        plan = self.plan
        progress(f"visitors: {plan['visitors']} visitors x {plan['visitor_pages']} pages, each with their own "
                 "session, csrftoken, _ga and cart_hint cookies, per variant")
        self.result["visitors"] = {}
        for key, meta in VARIANTS.items():
            if meta["server"] in skipped:
                continue
            try:
                run = self.browse_variant(key, meta, servers[meta["server"]])
            except Exception as error:  # noqa: BLE001 - recorded, the other variants go on
                self.fail(f"visitors {key}", error)
                continue
            self.result["visitors"][key] = run
            progress(f"visitors: {key:13} hit rate {run['hit_rate'] * 100:5.1f}% ({run['renders']} renders in "
                     f"{run['views']:,} views, {run['seconds']} s), cache entries {run['entries']:,}, "
                     f"leaks {run['leaks']}")

    def browse_variant(self, key, meta, stack):
        """Browse one variant's pages as every visitor; count its renders, entries and leaks."""
        front = meta.get("front", "nginx")
        # Ours through Varnish gets pages of its own: Django's cache already holds the first set.
        slugs = self.pages["varnish" if front == "varnish" else "django"]
        paths = [meta["page"].format(slug) for slug in slugs]
        prefix = self.prefix if meta["server"] == "sqlite" else self.variant_prefix(meta["server"])
        renders, rows = count_renders_of(stack.render_log, paths), self.cache_rows(prefix)
        objects = stack.varnish_counter("MAIN.n_object") if front == "varnish" else None
        tally = visitors.browse(base_url(stack, front), visitors.make_visitors(self.sessions), paths,
                                self.plan["visitor_threads"])
        time.sleep(0.3)  # a render still running writes its line when it ends
        run = {**tally, "label": meta["label"], "visitors": len(self.sessions), "pages": len(paths),
               "renders": count_renders_of(stack.render_log, paths) - renders,
               "django_entries": self.cache_rows(prefix) - rows}
        run["hit_rate"] = 1 - run["renders"] / run["views"] if run["views"] else 0.0
        run["varnish_objects"] = None if objects is None else stack.varnish_counter("MAIN.n_object") - objects
        run["entries"] = run["django_entries"] + (run["varnish_objects"] or 0)
        return run

    def cache_rows(self, prefix):
        """Count the database cache's rows under one key prefix (the stacks on the main catalog share a table)."""
        marker = f"{prefix}:"
        with contextlib.closing(sqlite3.connect(self.main_db, timeout=20)) as conn:
            return conn.execute("SELECT COUNT(*) FROM shop_cache WHERE substr(cache_key, 1, ?) = ?",
                                (len(marker), marker)).fetchone()[0]

    def measure_browser(self, stack):
        """Count what headless Chromium sends per page view of ours, through the stack's Varnish."""
        if not browser.available():
            self.result["notes"].append("Chromium or chromedriver is missing: the browser check was skipped")
            return
        paths = [f"/products/{slug}/" for slug in self.pages["browser"]]
        for path in paths:  # every HTML a Varnish HIT: what reaches Django then is the script's
            for headers in ({}, {"Accept-Encoding": "gzip"}):
                http_get(stack.varnish_url + path, headers)
        progress(f"browser: headless Chromium, {len(paths)} page views per visitor, three visitors")
        try:
            self.result["browser"] = browser.page_views(stack, paths, self.run_dir / "chromedriver.log")
        except Exception as error:  # noqa: BLE001 - recorded, the run goes on
            self.fail("browser", error)
            return
        found = self.result["browser"]
        progress("browser: API requests: " + ", ".join(
            f"{name} {found[name]['api']}/{found[name]['views']} views" for name in
            ("new_visitor", "visitor_with_cart", "stale_hint")))

    def write_ceiling_file(self, stack):
        """Copy the product page, as Nginx gets it from Django, into a static file."""
        http_get(f"{stack.nginx_url}/products/{self.slug}/")  # stored, if it was not yet: the copy is a HIT's
        status, headers, body = http_get(f"{stack.nginx_url}/products/{self.slug}/")
        if status != 200:
            raise StackError(f"/products/{self.slug}/ answered {status}")
        path = ROOT / "staticfiles" / CEILING_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        self.cleanup.callback(shutil.rmtree, path.parent, True)
        self.result["page_bytes"] = len(body)
        # The same answer for the floor stack's /bench/floor/page/: Django's headers, not the servers'.
        own = [(name, value) for name, value in headers.items() if name.lower() not in SERVER_HEADERS]
        (self.run_dir / "page-copy.json").write_text(json.dumps({"body": body.decode(), "headers": own}))

    def step_purge(self, stack):
        progress(f"purge: {self.plan['purge_saves']} saves of /products/{self.slug}/, each until Varnish "
                 "serves the new price")
        try:
            self.result["purge"] = measure_purge(stack, self.slug, self.plan["purge_saves"])
            purge = self.result["purge"]
            progress(f"purge: median {purge['median_s'] * 1000:.0f} ms, max {purge['max_s'] * 1000:.0f} ms")
        except Exception as error:  # noqa: BLE001 - recorded, the run goes on
            self.fail("purge", error)

    def step_spike(self):
        sqlite = self.sqlite_url(self.main_db)
        ttl = self.plan["spike_ttl"]
        stacks = {}
        for workers in (2, 8):
            stacks[f"spike{workers}"] = self.stack(f"spike{workers}", sqlite, processes=workers,
                                                   SHARED_PAGE_SECONDS=ttl,
                                                   BENCH_RENDER_LOG=self.run_dir / f"renders-{workers}w.log")
            # The seed's variants with the same TTL: "6 renders a minute" tested as stated.
            for variant in SEED_VARIANTS:
                stacks[f"{variant}{workers}"] = self.variant_stack(variant, f"spike-{variant}{workers}",
                                                                   processes=workers, BENCH_SEED_SECONDS=ttl)
        # The big catalog is seeded meanwhile: the spikes count renders, which the lock bounds
        # whatever the CPU left to each render; no figure of this step is a speed.
        seed = self.start_big_seed()
        failures = self.start_servers(stacks, "spike")
        self.result["spike"] = []
        for workers in (2, 8):
            runs = [(None, f"spike{workers}", "varnish"), (None, f"spike{workers}", "nginx")]
            runs += [(variant, f"{variant}{workers}", "nginx") for variant in SEED_VARIANTS]
            for variant, name, front in runs:
                if name in failures:
                    self.fail(f"spike {name}", failures[name])
                    continue
                self.spike_once(stacks[name], front, workers, variant)
            for name in {name for _, name, _ in runs}:
                stop_quietly(stacks[name])
        self.finish_big_seed(seed)

    def spike_once(self, stack, front, workers, variant):
        """One spike run; its figures go to the result, a failure to the errors."""
        page = VARIANTS[variant]["page"] if variant else "/products/{}/"
        path = page.format(self.spike_slug)
        progress(f"spike: {self.plan['spike_seconds']} s, {self.plan['spike_connections']} connections, "
                 f"{variant or 'ours'} through {front}, {workers} uWSGI workers, TTL {self.plan['spike_ttl']} s")
        try:
            run = run_spike(stack, front, workers, path, stack.render_log, self.plan, self.scripts, variant)
        except Exception as error:  # noqa: BLE001
            self.fail(f"spike {variant or 'ours'} {front} {workers}", error)
            return
        self.result["spike"].append(run)
        progress(f"spike: {run['requests']:,} requests, {run['renders']} renders = "
                 f"{run['renders_per_window']:.2f} per window (limit {run['limit']})")

    def start_big_seed(self):
        env = base_env(self.sqlite_url(self.big_db), CACHE_URL="dummycache://")
        log = open(self.run_dir / "seed-big.log", "wb")
        progress(f"costs: seeding {self.plan['big_catalog']:,} products in the background")
        proc = subprocess.Popen([str(PY), "manage.py", "seed_demo", "--products", str(self.plan["big_catalog"]),
                                 "-v0"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.cleanup.callback(lambda: proc.poll() is None and proc.kill())
        return proc, log, time.monotonic()

    def finish_big_seed(self, seed):
        proc, log, began = seed
        try:
            proc.wait(timeout=600)
        finally:
            log.close()
        self.result["big_seed_s"] = round(time.monotonic() - began, 1)
        if proc.returncode:
            self.fail("seeding the big catalog", (self.run_dir / "seed-big.log").read_text()[-1000:])
        else:
            progress(f"costs: {self.plan['big_catalog']:,} products seeded in {self.result['big_seed_s']} s")

    def step_rss(self):
        sqlite = self.sqlite_url(self.main_db)
        servers = {
            "no recycling (max-requests, reload-on-rss removed)": self.stack("rss-norecycle", sqlite, recycle=False),
            "as shipped (max-requests 100000, reload-on-rss 256)": self.stack("rss-shipped", sqlite),
        }
        paths_file = self.run_dir / "rss-paths.txt"
        with sqlite3.connect(self.main_db) as conn:
            slugs = [r[0] for r in conn.execute("SELECT slug FROM shop_product WHERE is_active ORDER BY id")]
            categories = [(r[0], r[1]) for r in conn.execute(
                "SELECT c.slug, COUNT(p.id) FROM shop_category c JOIN shop_product p ON p.category_id = c.id "
                "AND p.is_active GROUP BY c.slug")]
        paths = [f"/products/{s}/" for s in slugs] + ["/"]
        paths += [f"/categories/{c}/?page={n}" for c, count in categories for n in range(1, count // 24 + 2)]
        random.Random(1).shuffle(paths)
        paths_file.write_text("\n".join(paths) + "\n")
        failures = self.start_servers(servers, "memory")
        self.result["rss"] = []
        for label, stack in servers.items():
            if label in failures:
                self.fail(f"memory: {label}", failures[label])
                continue
            requests = self.plan["rss_requests" if not stack.recycle else "rss_shipped_requests"]
            cap = self.plan["rss_cap" if not stack.recycle else "rss_shipped_cap"]
            progress(f"memory: {requests:,} requests over {len(paths):,} URLs (at most {cap} s), {label}")
            try:
                run = run_rss(stack, label, requests, cap, paths_file, self.plan, self.scripts)
                self.result["rss"].append(run)
                progress(f"memory: {run['requests']:,} requests in {run['seconds']} s; worker RSS "
                         f"{run['warm_mib']} MiB after warm-up, {run['end_mib']} MiB at the end "
                         f"({run['growth'] * 100:+.1f}%), {run['workers_started']} worker processes in all")
            except Exception as error:  # noqa: BLE001
                self.fail(f"memory: {label}", error)
            stop_quietly(stack)

    def step_costs(self):
        if "big_seed_s" not in self.result:  # seeded during the spike step, unless it was skipped
            self.finish_big_seed(self.start_big_seed())
        costs = {"pages": {}, "culling": []}
        self.result["costs"] = costs
        for key, db in (("small", self.small_db), ("big", self.big_db)):
            progress(f"costs: queries and time per page, {key} catalog (in-process, no cache)")
            try:
                costs["pages"][key] = run_costs(base_env(self.sqlite_url(db), CACHE_URL="dummycache://"), "pages",
                                                "--samples", str(self.plan["samples"]))
                pages = costs["pages"][key]["pages"]
                progress("costs: " + ", ".join(f"{n} {p['queries']} queries {p['median_ms']:.1f} ms"
                                               for n, p in pages.items()))
            except Exception as error:  # noqa: BLE001
                self.fail(f"costs {key}", error)
        self.hitpath_costs(costs)
        for label, max_entries in (("Django's default", 300), ("config/settings.py", None)):
            extra = {"CACHE_URL": "dbcache://bench_cull_cache", "SHARED_PAGE_SECONDS": 3600}
            if max_entries:
                extra["CACHE_MAX_ENTRIES"] = max_entries
            progress(f"costs: database cache with MAX_ENTRIES from {label}, {self.plan['cull_urls']} pages twice")
            try:
                run = run_costs(base_env(self.sqlite_url(self.small_db), **extra), "culling",
                                "--urls", str(self.plan["cull_urls"]))
                run["label"] = label
                costs["culling"].append(run)
                progress(f"costs: hit rate on the second visit {run['hit_rate'] * 100:.0f}%, {run['rows']} rows")
            except Exception as error:  # noqa: BLE001
                self.fail(f"culling {label}", error)

    def hitpath_costs(self, costs):
        """Django's own time per request, in-process: the floor, and a HIT per backend with its cache share."""
        product = f"/products/{self.slug}/"
        cases = [("floor", "/bench/bare/", {"CACHE_URL": "locmem://", "BENCH_NO_MIDDLEWARE": 1}),
                 ("bare", "/bench/bare/", {"CACHE_URL": "locmem://"}),
                 ("hit_locmem", product, {"CACHE_URL": "locmem://"}),
                 ("hit_db", product, {}),
                 ("hit_redis", product, {"CACHE_URL": REDIS_URL})]
        if self.memcached:
            cases.append(("hit_memcached", product, {"CACHE_URL": f"pymemcache://127.0.0.1:{self.memcached.port}"}))
        # The floor reading the page's copy from each backend with one get: the least a HIT from it costs.
        read = {"BENCH_NO_MIDDLEWARE": 1, "BENCH_PAGE_COPY": self.run_dir / "page-copy.json"}
        if read["BENCH_PAGE_COPY"].exists():  # written by the matrix step
            cases += [(f"floor_read_{name.removeprefix('hit_')}", "/bench/floor/cache/default/", {**read, **extra})
                      for name, _, extra in cases if name.startswith("hit_")]
        costs["hitpath"] = {}
        progress("costs: Django's time per request in-process (WSGI handler, no server): the floor and each HIT")
        for name, path, extra in cases:
            # The main catalog and its cache table; a prefix of its own keeps these entries apart.
            env = base_env(self.sqlite_url(self.main_db), BENCH_CACHE_PREFIX=f"{self.prefix}-hitpath", **extra)
            try:
                costs["hitpath"][name] = run_costs(env, "hitpath", "--path", path, "--requests",
                                                   str(self.plan["hitpath_requests"]))
            except Exception as error:  # noqa: BLE001 - recorded, the others go on
                self.fail(f"hitpath {name}", error)
        progress("costs: " + ", ".join(f"{n} {c['us_per_request']:.0f} us ({c['cache_us_per_request']:.0f} in the "
                                       "cache)" for n, c in costs["hitpath"].items()))

    def fail(self, step, error):
        message = f"{step}: {str(error).strip()[-1500:]}"
        self.result["errors"].append(message)
        progress(f"ERROR {message.splitlines()[0]}")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Measure every layer of the store side by side.")
    parser.add_argument("--out", type=Path, help="the JSON file (default results/bench-<date>.json)")
    parser.add_argument("--quick", action="store_true", help="a few seconds per row: check the pipeline")
    parser.add_argument("--steps", default=os.environ.get("BENCH_STEPS") or ",".join(STEPS),
                        help=f"comma-separated, any of {','.join(STEPS)} (default: all); a partial run "
                             "leaves docs/bench/ alone")
    args = parser.parse_args(argv)
    quick = args.quick or os.environ.get("BENCH_QUICK", "") not in ("", "0")
    steps = [step.strip() for step in args.steps.split(",") if step.strip()]
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        parser.error(f"unknown step(s) {', '.join(unknown)}; the steps are {', '.join(STEPS)}")
    plan = dict(QUICK if quick else FULL)
    for key in plan:
        if f"BENCH_{key.upper()}" in os.environ:
            plan[key] = int(os.environ[f"BENCH_{key.upper()}"])
    out = args.out or ROOT / "results" / f"bench-{datetime.date.today().isoformat()}.json"
    stop_on_sigterm()
    progress(f"{'quick' if quick else 'full'} run; output {out}")
    bench = Bench(plan, quick, steps)
    try:
        result = bench.run()
    except KeyboardInterrupt:
        progress("interrupted: servers stopped")
        return 130
    md_path, png_path = write_outputs(result, out)
    copied = "" if quick or steps != list(STEPS) else f"; copied to {DOCS_DIR.relative_to(ROOT)}/"
    progress(f"done in {result['duration_s'] / 60:.1f} min: {out}, {md_path.name}, {png_path.name}{copied}")
    print(report.targets_table(result))
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())
