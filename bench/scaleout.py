"""Scale-out figures: the same traffic through one Varnish to 1, 2 and 3 app nodes (scaling out).

    .venv/bin/python -m bench.scaleout [--quick] [--out results/scaleout-DATE.json]

Starts three stacks side by side with deploy/stack.py as shipped (nodes=1: default.vcl and one
node; nodes=2 and 3: cluster.vcl's round-robin director over that many nodes, each its own Nginx
and uWSGI with 2 workers), all on one MariaDB database and one Redis, and measures with wrk:

    cached         product pages, every one a Varnish HIT: the nodes are never asked
    cart page      GET /cart/ with a session holding 3 items: passed by Varnish, a session read,
                   the cart's queries and a template render on a node, every time
    cart API       GET /api/cart/ with that session: the same reads, JSON instead of HTML

in interleaved rounds (1, 2, 3 nodes, then 3, 2, 1, ...) so that the machine's drift hits every
row alike, and reports the median req/s of each row and node count and the scaling factor
against one node. It also counts, from each node's Nginx log, how the uncached requests were
spread. All load goes to 127.0.0.1; every wrk run has a duration; every server is stopped by PID.

On one machine the nodes share its cores: the factor measures the cost of more processes, not
the gain of more machines (docs/scale-out.md explains what to expect on real ones).

Knobs: SCALEOUT_DATABASE_URL (default mysql://root@127.0.0.1:3306/shop_scaleout_bench, dropped and
created; its name must end in "bench"), SCALEOUT_<NAME> for any figure of PLAN (e.g.
SCALEOUT_SECONDS=10). Writes the JSON and a Markdown table beside it.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import load
from bench.run import reset_mariadb
from deploy.stack import Stack
from harness.process import HTTP, ROOT, free_ports
from harness.script import Progress, stop_on_sigterm
from harness.servers import Redis

NODE_COUNTS = (1, 2, 3)
PLAN = {"rounds": 3, "seconds": 5, "warmup": 1, "connections": 32, "threads": 2, "products": 200, "pages": 50}
QUICK = {**PLAN, "rounds": 1, "seconds": 1}
DATABASE_URL = os.environ.get("SCALEOUT_DATABASE_URL", "mysql://root@127.0.0.1:3306/shop_scaleout_bench")
RUN_DIR = ROOT / "results" / "scaleout-run"

ROWS = (
    ("cached", "Product pages, Varnish HIT (cached)"),
    ("cart_page", "Cart page, passed to a node (uncached HTML)"),
    ("cart_api", "Cart API, passed to a node (uncached JSON)"),
)

progress = Progress("scaleout")


# ------------------------------------------------------------------------------------------------
# Servers and data
# ------------------------------------------------------------------------------------------------


def start_stacks(env, ports):
    """Prepare the database once, then start a 1-, 2- and 3-node stack side by side."""
    stacks = {
        nodes: Stack(ROOT, RUN_DIR / f"nodes-{nodes}", varnish_port=varnish, nginx_port=nginx, env=env, nodes=nodes)
        for nodes, (varnish, nginx) in zip(NODE_COUNTS, ports, strict=True)
    }
    for stack in stacks.values():
        stack.run_dir.mkdir(parents=True, exist_ok=True)
        stack.run_dir.chmod(0o755)  # varnishd's compiler user reads the rendered VCL here
    with ThreadPoolExecutor(len(stacks)) as pool:
        for future in [pool.submit(stack.start, manage=False, timeout=180) for stack in stacks.values()]:
            future.result()
    return stacks


def stop_stacks(stacks):
    for stack in stacks.values():
        try:
            stack.stop()
        except Exception as error:  # noqa: BLE001 - keep stopping the others
            progress(f"warning: stopping {stack.run_dir}: {error}")


def get(url, headers=None, data=None):
    request = urllib.request.Request(url, headers=headers or {}, data=data)
    with HTTP.open(request, timeout=15) as response:
        return response.status, response.headers, response.read()


def make_shopper(stack, slugs):
    """Fill a cart with 3 products through the API; return its Cookie header."""
    status, headers, _ = get(stack.url("/api/cart/"))
    cookies = dict(re.findall(r"(csrftoken)=([^;]+)", " ".join(headers.get_all("Set-Cookie") or [])))
    for slug in slugs:
        request_headers = {
            "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()),
            "X-CSRFToken": cookies["csrftoken"],
            "Origin": stack.varnish_url,
            "Content-Type": "application/json",
        }
        status, headers, _ = get(stack.url("/api/cart/items/"), request_headers, json.dumps({"product": slug}).encode())
        cookies.update(re.findall(r"(sessionid)=([^;]+)", " ".join(headers.get_all("Set-Cookie") or [])))
    return "Cookie: " + "; ".join(f"{k}={v}" for k, v in cookies.items())


def product_paths(stack, count):
    """Return `count` product paths, read from the category pages."""
    _, _, home = get(stack.url("/"))
    paths = []
    for category in sorted(set(re.findall(rb'href="(/categories/[^"/]+/)"', home))):
        _, _, page = get(stack.url(category.decode()))
        paths += [p.decode() for p in re.findall(rb'href="(/products/[^"/]+/)"', page)]
    paths = list(dict.fromkeys(paths))
    if len(paths) < count:
        raise RuntimeError(f"only {len(paths)} product pages found")
    return paths[:count]


# ------------------------------------------------------------------------------------------------
# Measuring
# ------------------------------------------------------------------------------------------------


def check(stack, row, path, cookie):
    """GET what a row loads; return None if it answers as the row says, else what is wrong."""
    headers = dict([cookie.split(": ", 1)]) if cookie else {}
    status, answer, _ = get(stack.url(path), headers)
    if status != 200:
        return f"status {status}"
    wanted = "HIT" if row == "cached" else "MISS"
    return None if answer.get("X-Cache") == wanted else f"X-Cache {answer.get('X-Cache')}, wanted {wanted}"


def requests_per_node(stack, path):
    """Count each node's Nginx log lines for `path` (how the director spread the uncached rows)."""
    counts = {}
    for node in stack.app_nodes:
        log = node.log_dir / "nginx-access.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        counts[node.name] = text.count(f'"GET {path} ')
    return counts


def measure(stacks, plan, paths_file, cookie):
    scripts = load.write_scripts(RUN_DIR / "lua")
    targets = {
        "cached": ("/", scripts["paths"], (), paths_file),
        "cart_page": ("/cart/", scripts["done"], (cookie,), None),
        "cart_api": ("/api/cart/", scripts["done"], (cookie,), None),
    }
    first_page = paths_file.read_text().split()[0]
    results = {row: {nodes: [] for nodes in stacks} for row, _ in ROWS}
    for row, (path, script, headers, paths) in targets.items():
        for nodes, stack in stacks.items():
            load.run(stack.url(path), plan["warmup"], script, plan["connections"], plan["threads"], headers,
                     paths_file=paths)  # fmt: skip
            problem = check(stack, row, first_page if row == "cached" else path, cookie if row != "cached" else None)
            if problem:
                raise RuntimeError(f"{row} on {nodes} node(s) after warm-up: {problem}")
    progress(f"warmed and checked; {plan['rounds']} rounds of {plan['seconds']} s per row and node count")
    for number in range(plan["rounds"]):
        order = list(stacks) if number % 2 == 0 else list(stacks)[::-1]
        for row, (path, script, headers, paths) in targets.items():
            for nodes in order:
                figures = load.run(stacks[nodes].url(path), plan["seconds"], script, plan["connections"],
                                   plan["threads"], headers, paths_file=paths)  # fmt: skip
                results[row][nodes].append(figures)
                progress(
                    f"round {number + 1}: {row:9} {nodes} node(s) {figures['rps']:8.0f} req/s  "
                    f"p50 {figures['p50_ms']:6.1f} ms  p99 {figures['p99_ms']:6.1f} ms  errors {figures['errors']}"
                )
    return results


def summarise(results):
    table = {}
    for row, by_nodes in results.items():
        medians = {nodes: statistics.median(r["rps"] for r in runs) for nodes, runs in by_nodes.items()}
        table[row] = {
            nodes: {
                "rps": medians[nodes],
                "rps_min": min(r["rps"] for r in runs),
                "rps_max": max(r["rps"] for r in runs),
                "p50_ms": statistics.median(r["p50_ms"] for r in runs),
                "p99_ms": statistics.median(r["p99_ms"] for r in runs),
                "errors": sum(r["errors"] for r in runs),
                "factor": medians[nodes] / medians[1] if medians[1] else 0.0,
            }
            for nodes, runs in by_nodes.items()
        }
    return table


def markdown(result):
    lines = [
        f"Scale-out on {result['machine']['cpus']} CPU(s), {result['plan']['rounds']} rounds of "
        f"{result['plan']['seconds']} s, wrk -t{result['plan']['threads']} -c{result['plan']['connections']}, "
        "2 uWSGI workers per node; median req/s (min-max), p99, factor against 1 node. "
        f"Load average of the machine before and after: {result['machine']['load_average']}.",
        "",
        "| traffic | " + " | ".join(f"{n} node{'s' if n > 1 else ''}" for n in NODE_COUNTS) + " |",
        "| --- | " + " | ".join("---" for _ in NODE_COUNTS) + " |",
    ]
    for row, label in ROWS:
        cells = []
        for nodes in NODE_COUNTS:
            f = result["table"][row][nodes]
            cells.append(
                f"{f['rps']:.0f} ({f['rps_min']:.0f}-{f['rps_max']:.0f}), p99 {f['p99_ms']:.0f} ms, "
                f"x{f['factor']:.2f}" + (f", {f['errors']} errors" if f["errors"] else "")
            )
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    spread = result["spread"]
    lines += ["", "Cart page requests per node (Nginx logs): " + "; ".join(
        f"{n} node{'s' if int(n) > 1 else ''}: {counts}" for n, counts in spread.items())]  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description="Measure the store on 1, 2 and 3 app nodes behind Varnish.")
    parser.add_argument("--out", type=Path, help="the JSON file (default results/scaleout-<date>.json)")
    parser.add_argument("--quick", action="store_true", help="one short round: checks the pipeline")
    args = parser.parse_args(argv)
    plan = dict(QUICK if args.quick or os.environ.get("BENCH_QUICK", "") not in ("", "0") else PLAN)
    for key in plan:
        plan[key] = int(os.environ.get(f"SCALEOUT_{key.upper()}", plan[key]))
    out = args.out or ROOT / "results" / f"scaleout-{datetime.date.today().isoformat()}.json"
    stop_on_sigterm()
    shutil.rmtree(RUN_DIR, ignore_errors=True)
    RUN_DIR.mkdir(parents=True)
    load_before = round(os.getloadavg()[0], 1)
    mariadb_version = reset_mariadb(DATABASE_URL)
    redis = Redis(RUN_DIR / "redis").start()
    stacks = {}
    try:
        env = {
            "SHOP_DEMO": "1",
            "DATABASE_URL": DATABASE_URL,
            "DATABASE_REPLICA_URL": "",
            "CACHE_URL": redis.url,
        }
        preparer = Stack(ROOT, RUN_DIR / "prepare", env=env)
        preparer.prepare_django()
        preparer.manage("seed_demo", "--products", str(plan["products"]), "-v0")
        progress(f"database seeded with {plan['products']} products (MariaDB {mariadb_version})")
        ports = [tuple(free_ports(2)) for _ in NODE_COUNTS]
        stacks = start_stacks(env, ports)
        progress("stacks up: " + ", ".join(f"{n} node(s) on {s.varnish_url}" for n, s in stacks.items()))
        paths = product_paths(stacks[1], plan["pages"])
        paths_file = RUN_DIR / "paths.txt"
        paths_file.write_text("\n".join(paths) + "\n")
        cookie = make_shopper(stacks[1], [p.split("/")[2] for p in paths[:3]])
        results = measure(stacks, plan, paths_file, cookie)
        spread = {str(n): requests_per_node(stack, "/cart/") for n, stack in stacks.items()}
    except KeyboardInterrupt:
        progress("interrupted: servers stopped")
        return 130
    finally:
        stop_stacks(stacks)
        redis.stop()
    result = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "plan": plan,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "mariadb": mariadb_version,
            "wrk": load.version(),
            # Other work on the machine while this ran (the 1-minute load average, before and after).
            "load_average": [load_before, round(os.getloadavg()[0], 1)],
        },
        "rounds": {row: {str(n): runs for n, runs in by_nodes.items()} for row, by_nodes in results.items()},
        "table": summarise(results),
        "spread": spread,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    table = markdown(result)
    out.with_suffix(".md").write_text(table)
    print(table)
    progress(f"done: {out} and {out.with_suffix('.md').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
