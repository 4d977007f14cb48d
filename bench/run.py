#!/usr/bin/env python3
"""`make bench`: every layer of the store measured side by side in one run, as ratios.

    .venv/bin/python bench/run.py [--out results/bench-DATE.json] [--quick]

Seeds catalogs, starts the real servers on free loopback ports (deploy/stack.py's Stack, run from
deploy/ as shipped, with DJANGO_SETTINGS_MODULE=bench.settings), and measures with wrk:

    1  throughput   every row (Nginx ceiling, Varnish HIT, Django HIT per cache backend, uncached
                    render, bare Django, static CSS, uWSGI vs gunicorn, MariaDB) in interleaved
                    rounds, A..Z then Z..A, so that the machine's drift hits every row alike
    2  purge        product saves until the new price is served through Varnish
    3  spike        one hot page, TTL 10 s, many connections: renders counted by the app
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
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import load, report  # noqa: E402
from bench.servers import (  # noqa: E402
    AppServer,
    BenchStack,
    BuiltinVarnish,
    Memcached,
    StackError,
    free_ports,
    http_get,
)

PY = ROOT / ".venv" / "bin" / "python"
RUN_DIR = ROOT / "results" / "bench-run"
DOCS_DIR = ROOT / "docs" / "bench"
# The ceiling row's file: written into STATIC_ROOT (git-ignored) for Nginx, removed at the end.
CEILING_FILE = Path("bench") / "product-page.html"

# How long and how hard; BENCH_<NAME> overrides any of them (e.g. BENCH_SECONDS=5).
FULL = {
    "rounds": 5,  # interleaved rounds: A..Z, Z..A, A..Z, ...; an odd count has a true median
    "seconds": 2,  # per row per round (wrk takes whole seconds)
    "warmup": 1,  # per row, before the first round
    "connections": 32,
    "threads": 2,
    "catalog": 1_000,  # products in the catalog the servers run on
    "big_catalog": 100_000,
    "spike_seconds": 60,
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
}

# The steps of a full run, in order; `--steps` (BENCH_STEPS) picks some of them. The purge is
# measured inside the matrix step, on its SQLite stack.
STEPS = ("matrix", "spike", "rss", "costs")

MARIADB_URL = os.environ.get("BENCH_MARIADB_URL", "mysql://root@127.0.0.1:3306/shop_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")

_STARTED = time.monotonic()


def progress(message):
    """Print one progress line, with the time since the start."""
    elapsed = int(time.monotonic() - _STARTED)
    print(f"[bench {elapsed // 60:02d}:{elapsed % 60:02d}] {message}", flush=True)


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


def matrix_rows(slug, css_path):
    """The rows: (id, label, group, server, front, path, headers, check, how the request travels)."""
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


def check_row(url, headers, check):
    """GET the row's URL; return None if it answers as the row says, else what was wrong."""
    request_headers = dict(h.split(": ", 1) for h in headers)
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
    return None


def run_matrix(rows, servers, plan, scripts, skipped):
    """Warm and check every row, then measure them in interleaved rounds."""
    results = {}
    active = []
    for row_id, label, group, server_name, front, path, headers, check, travel in rows:
        entry = {"label": label, "group": group, "server": server_name, "front": front, "path": path,
                 "travel": travel, "headers": list(headers), "rounds": []}
        results[row_id] = entry
        if server_name in skipped:
            entry["skipped"] = skipped[server_name]
            progress(f"matrix: {row_id} skipped ({skipped[server_name][:80]})")
            continue
        url = base_url(servers[server_name], front) + path
        entry["url"] = url
        load.run(url, plan["warmup"], scripts["done"], plan["connections"], plan["threads"], headers)
        problem = next(filter(None, (check_row(url, headers, check) for _ in range(4))), None)
        if problem:
            entry["check"] = problem
            progress(f"matrix: warning: {row_id} after warm-up: {problem}")
        status, answer_headers, body = http_get(url, dict(h.split(": ", 1) for h in headers))
        entry["response_bytes"] = len(body)
        active.append((row_id, url, headers))
    progress(f"matrix: {len(active)} rows warmed; {plan['rounds']} rounds of {plan['seconds']} s each")
    for number in range(plan["rounds"]):
        order = active if number % 2 == 0 else active[::-1]
        for row_id, url, headers in order:
            figures = load.run(url, plan["seconds"], scripts["done"], plan["connections"], plan["threads"], headers)
            figures["round"] = number + 1
            results[row_id]["rounds"].append(figures)
            progress(
                f"matrix round {number + 1}/{plan['rounds']}: {row_id:18} {figures['rps']:9.0f} req/s  "
                f"p50 {figures['p50_ms']:7.2f} ms  p99 {figures['p99_ms']:7.2f} ms  errors {figures['errors']}"
            )
    for entry in results.values():
        summarise_rounds(entry)
    return results


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
}


def ratios(rows):
    """Return each ratio of RATIOS: median, min and max of its per-round values."""
    out = {}
    for name, (top, bottom) in RATIOS.items():
        a, b = rows.get(top, {}).get("rounds"), rows.get(bottom, {}).get("rounds")
        if not a or not b:
            continue
        by_round = [x["rps"] / y["rps"] for x, y in zip(a, b, strict=False) if y["rps"]]
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


def count_renders(log, path):
    """Count the renders of `path` in a BENCH_RENDER_LOG file."""
    try:
        return sum(1 for line in log.read_text().splitlines() if line == path)
    except FileNotFoundError:
        return 0


def run_spike(stack, front, workers, path, log, plan, scripts):
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
    return {
        "through": "Varnish" if front == "varnish" else "Django alone (Nginx -> uWSGI)",
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
        "limit": 1.0 if front == "varnish" else 1.2,
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
    """Each target of issue 5 against its measured figure: met True/False, or None if not measured."""
    r, out = result.get("ratios", {}), []

    def add(name, measured, met, goal, limit=None):
        out.append({"target": name, "goal": goal, "measured": measured, "met": met, "limit": limit})

    def ratio(key, floor, name, limit_key=None, limit_label=""):
        value = r.get(key, {}).get("median")
        limit = r.get(limit_key, {}).get("median") if limit_key else None
        add(name, None if value is None else f"{value:.2f}x", None if value is None else value >= floor,
            f">= {floor}x", None if limit is None else f"{limit:.2f}x {limit_label}")

    # The limits: what the same measure gives for the least each layer can do on this machine.
    # A target above its limit cannot be met here by any code or VCL of ours.
    varnish_floor = "(Varnish, builtin VCL only)"
    django_floor = "(Django, trivial view, no middleware)"
    ratio("varnish_vs_ceiling", 0.7, "Varnish HIT vs the Nginx static ceiling", "varnish_builtin_vs_ceiling",
          varnish_floor)
    ratio("hit_db_vs_uncached", 6, "Django HIT, database cache, vs the uncached render", "floor_vs_uncached",
          django_floor)
    ratio("hit_redis_vs_uncached", 6, "Django HIT, Redis, vs the uncached render", "floor_vs_uncached",
          django_floor)
    ratio("hit_memcached_vs_uncached", 6, "Django HIT, memcached, vs the uncached render", "floor_vs_uncached",
          django_floor)
    ratio("hit_locmem_vs_uncached", 9, "Django HIT, locmem, vs the uncached render", "floor_vs_uncached",
          django_floor)
    for run in result.get("spike", []):
        add(f"Renders per {run['ttl_s']} s window, {run['through']}, {run['workers']} workers",
            f"{run['renders_per_window']:.2f} ({run['renders']} in {run['seconds']:.0f} s)",
            run["renders_per_window"] <= run["limit"], f"<= {run['limit']}")
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
        self.result["duration_s"] = round(time.monotonic() - _STARTED, 1)
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
        manifest = json.loads((ROOT / "staticfiles" / "staticfiles.json").read_text())
        self.css_path = manifest["paths"]["shop/store.css"]
        self.result["pages"] = {"product": f"/products/{self.slug}/", "spike": f"/products/{self.spike_slug}/",
                                "css": f"/static/{self.css_path}"}
        self.start_memcached()
        self.result["machine"] = machine_info(self.memcached and self.memcached.version(), self.mariadb_version)

    def prepare_mariadb(self):
        self.mariadb_version = reset_mariadb(MARIADB_URL)
        prepare_database(base_env(MARIADB_URL), self.plan["catalog"])

    def start_memcached(self):
        if not shutil.which("memcached"):
            self.result["notes"].append("memcached is not installed: its row is skipped (make bench installs it)")
            return
        port = 11211
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                # A memcached of the system's (or someone's) is there: run ours beside it.
                port = free_ports(1)[0]
                self.result["notes"].append(f"127.0.0.1:11211 was busy; the bench's memcached ran on {port}")
        self.memcached = Memcached(self.run_dir / "memcached.log", port)
        self.cleanup.callback(stop_quietly, self.memcached)
        self.memcached.start()
        progress(f"prepare: memcached on 127.0.0.1:{port} (pid {self.memcached.proc.pid})")

    def stack(self, name, database_url, processes=2, recycle=True, max_requests=None, **env):
        varnish_port, nginx_port = free_ports(2)
        return BenchStack(
            ROOT, self.run_dir / name, varnish_port=varnish_port, nginx_port=nginx_port, processes=processes,
            env=base_env(database_url, BENCH_CACHE_PREFIX=self.prefix, **env), recycle=recycle,
            max_requests=max_requests,
        )

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
            "sqlite": self.stack("sqlite", sqlite),
            "redis": self.stack("redis", sqlite, CACHE_URL=REDIS_URL),
            "locmem": self.stack("locmem", sqlite, CACHE_URL="locmem://"),
            "mr1000": self.stack("mr1000", sqlite, max_requests=1000),
            "floor": self.stack("floor", sqlite, CACHE_URL="locmem://", BENCH_NO_MIDDLEWARE=1),
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
        skipped = self.start_servers(servers, "matrix")
        if "sqlite" in skipped:
            raise StackError(f"the main stack did not start: {skipped['sqlite']}")
        if not self.memcached:
            skipped["memcached"] = "memcached is not installed"
        if not self.mariadb_version:
            skipped["mariadb"] = "MariaDB is not reachable"
        self.write_ceiling_file(servers["sqlite"])
        rows = matrix_rows(self.slug, self.css_path)
        self.result["rows"] = run_matrix(rows, servers, self.plan, self.scripts, skipped)
        self.result["ratios"] = ratios(self.result["rows"])
        self.result["respawns"] = {
            name: server.respawns() for name, server in servers.items() if isinstance(server, BenchStack)
        }
        progress(f"matrix: uWSGI workers respawned per stack: {self.result['respawns']}")
        stop_all([server for name, server in servers.items() if name != "sqlite"])
        self.step_purge(servers["sqlite"])
        stop_quietly(servers["sqlite"])

    def write_ceiling_file(self, stack):
        """Copy the product page, as Nginx gets it from Django, into a static file."""
        status, _headers, body = http_get(f"{stack.nginx_url}/products/{self.slug}/")
        if status != 200:
            raise StackError(f"/products/{self.slug}/ answered {status}")
        path = ROOT / "staticfiles" / CEILING_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        self.cleanup.callback(shutil.rmtree, path.parent, True)
        self.result["page_bytes"] = len(body)

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
        path = f"/products/{self.spike_slug}/"
        stacks = {}
        for workers in (2, 8):
            log = self.run_dir / f"renders-{workers}w.log"
            stacks[workers] = (self.stack(f"spike{workers}", sqlite, processes=workers,
                                          SHARED_PAGE_SECONDS=self.plan["spike_ttl"], BENCH_RENDER_LOG=log), log)
        # The big catalog is seeded meanwhile: the spikes count renders, which the lock bounds
        # whatever the CPU left to each render; no figure of this step is a speed.
        seed = self.start_big_seed()
        failures = self.start_servers({f"spike{w}": s for w, (s, _) in stacks.items()}, "spike")
        self.result["spike"] = []
        for workers, (stack, log) in stacks.items():
            if f"spike{workers}" in failures:
                self.fail(f"spike with {workers} workers", failures[f"spike{workers}"])
                continue
            for front in ("varnish", "nginx"):
                progress(f"spike: {self.plan['spike_seconds']} s, {self.plan['spike_connections']} connections, "
                         f"through {front}, {workers} uWSGI workers, TTL {self.plan['spike_ttl']} s")
                try:
                    run = run_spike(stack, front, workers, path, log, self.plan, self.scripts)
                except Exception as error:  # noqa: BLE001
                    self.fail(f"spike {front} {workers}", error)
                    continue
                self.result["spike"].append(run)
                progress(f"spike: {run['requests']:,} requests, {run['renders']} renders = "
                         f"{run['renders_per_window']:.2f} per window (limit {run['limit']})")
            stop_quietly(stack)
        self.finish_big_seed(seed)

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

    def fail(self, step, error):
        message = f"{step}: {str(error).strip()[-1500:]}"
        self.result["errors"].append(message)
        progress(f"ERROR {message.splitlines()[0]}")


def _stop_on_signal(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


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
    signal.signal(signal.SIGTERM, _stop_on_signal)
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
