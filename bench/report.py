"""Turn the benchmark's JSON into the Markdown table and the PNG chart that the README shows.

    python -m bench.report results/bench-DATE.json    re-render its .md and .png from the JSON
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402

GROUP_COLOURS = {
    "edge": "#4c72b0",
    "django-cache": "#55a868",
    "django": "#c44e52",
    "static": "#8172b2",
    "mariadb": "#ccb974",
    "app-server": "#64b5cd",
    "max-requests-1000": "#dd8452",
    "seed": "#937860",
    "page-view": "#da8bc3",
}
# The seed's way against ours, in the chart's order: the seed's first, ours last.
VARIANT_ORDER = ("seed", "halfway", "site", "site_seed", "ours", "ours_varnish")
VARIANT_COLOURS = {"seed": "#c44e52", "halfway": "#dd8452", "site": "#ccb974", "site_seed": "#937860",
                   "ours": "#55a868", "ours_varnish": "#4c72b0"}
LEAK_LABELS = {"cart_count": "another's cart count", "set_cookie": "another's Set-Cookie",
               "csrf_token": "another's CSRF token"}


METHOD = [
    "Every server runs on loopback from the files in deploy/ (deploy/stack.py renders ports and paths only) "
    "with `DJANGO_SETTINGS_MODULE=bench.settings`: config.settings plus bench-only URLs, WhiteNoise at "
    "`/django-static/` and, for the spike, a render counter. Each cache backend gets a stack of its own; all "
    "stacks run at once, idle but for the row being measured.",
    "Uncached render: the store's `product_detail` view without its `shared_page` decorator, mounted at "
    "`/bench/uncached/products/<slug>/` (no cache read, lock, write or gzip copy). It is the fastest way to serve "
    "the page uncached, so the HIT/uncached ratios are the conservative ones. A MISS through `shared_page` costs "
    "more (the render plus the cache writes).",
    "Bare Django request: a view that answers `ok`, through the same URLconf and middleware.",
    "uWSGI alone and gunicorn alone: 2 workers each, over HTTP on a TCP port, no Nginx, closing the connection "
    "after each answer (gunicorn's sync workers cannot keep it alive); uWSGI with shop.ini's process options "
    "but no max-requests, as gunicorn's default.",
    "'max-requests = 1000' rows: shop.ini with that one value changed (it ships 100000), a common setting "
    "that replaces a busy worker every second or two; the rest as shipped.",
    "Ratios are taken within each round, then the median over the rounds; req/s drift between runs on this "
    "shared machine, the ratios much less. The targets against a floor are measured once more with the floor "
    "run just before and just after each run of the row (*Against the floor, in alternation*).",
    "The floor stack (no middleware at all) also answers the product page's copy, unpickled as a HIT's entry "
    "is (`/bench/floor/page/`), and the same copy read with one `get` from each backend under test "
    "(`/bench/floor/cache/<alias>/`, the store's backend classes): what a HIT from that backend cannot do "
    "without.",
    "The seed's variants (bench/variants.py, bench/templates/bench/) run on stacks of their own with "
    "`BENCH_VARIANT`: the seed's code and the half-way variant with `django-admin startproject`'s middleware "
    "list (read from Django's own project template) and `@cache_page`; the per-site cache with the store's "
    "middleware, `UpdateCacheMiddleware` first, `FetchFromCacheMiddleware` last, pagecache's middleware removed, "
    "around the store's product view without `@shared_page`. Same catalog, same database cache, each under a key "
    "prefix of its own. None of them is reachable from config/urls.py or config/settings.py "
    "(tests/test_bench_variants.py).",
    "A variant's HIT is checked with the app's render log (no render while the row is requested), since "
    "`@cache_page` marks no hit. The stacks that count renders (ours on SQLite, the variants) append one line "
    "per render and nothing per hit.",
    "Page views: a wrk Lua script sends the page's HTML and then what the page's script requests per view, "
    "derived from the script: pagecache/static/pagecache/cart.js requests nothing while a visitor has no hint "
    "cookie or a hint before its refresh time (it draws the badge from the cookie), and one GET of the cart API "
    "once a hint's refresh time has passed or when the visitor acts; the old badge script, and the half-way "
    "variant's, GET the cart API on every page load. Headless Chromium checks it in the same run (below). "
    "Static files are left out: their names are hashed and `immutable`, and Chromium fetches them on the first "
    "view only. Requests that reached Django are counted in Nginx's access log, round by round.",
]


def _num(value, digits=0):
    return f"{value:,.{digits}f}"


def _range(figure, digits=0):
    return f"{_num(figure['median'], digits)} ({_num(figure['min'], digits)}–{_num(figure['max'], digits)})"


def _met(met):
    return {True: "**met**", False: "**not met**", None: "not measured"}[met]


def targets_table(result):
    lines = [
        "| target | goal | measured | | beside it: the floor, the seed's way, the absolute figures |",
        "| --- | --- | --- | --- | --- |",
    ]
    for t in result.get("targets", []):
        lines.append(
            f"| {t['target']} | {t['goal']} | {t['measured'] or '-'} | {_met(t['met'])} | {t.get('limit') or ''} |"
        )
    return "\n".join(lines)


def _git_line(result):
    """Return ", commit abc1234" and how many tracked files the working tree had changed, if known."""
    git = result.get("git") or {}
    if not git.get("commit"):
        return ""
    changed = git.get("changed_files")
    return f", commit {git['commit']}" + (f" with {changed} tracked files changed in the working tree" * bool(changed))


def _machine_line(result):
    m = result.get("machine", {})
    p = m.get("packages", {})
    return (
        f"{m.get('cores')} cores ({m.get('cpu')}), {m.get('memory_gib')} GiB, {m.get('os')}, kernel "
        f"{m.get('kernel')}; load average {m.get('loadavg_start', [0])[0]:.1f} at the start, "
        f"{m.get('loadavg_end', [0])[0]:.1f} at the end (a shared machine: compare ratios, not req/s). "
        f"Python {m.get('python')}, Django {p.get('Django')}, uWSGI {p.get('uWSGI')}, gunicorn {p.get('gunicorn')}, "
        f"WhiteNoise {p.get('whitenoise')}; {m.get('nginx')}; {m.get('varnish')}; {m.get('wrk')}; SQLite "
        f"{m.get('sqlite')}; MariaDB {m.get('mariadb')}; Redis {m.get('redis')}; memcached {m.get('memcached')}."
    )


def _throughput(result):
    plan = result["plan"]
    lines = [
        f"wrk, {plan['threads']} threads, {plan['connections']} connections, {plan['rounds']} interleaved rounds "
        f"of {plan['seconds']} s per row (A..Z, then Z..A), after {plan['warmup']} s of warm-up; the product "
        f"page is {result.get('page_bytes', 0):,} bytes of HTML; no `Accept-Encoding` unless the row says so.",
        "",
        "| row | served by | req/s: median (min–max) | p50 ms | p99 ms | errors |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for entry in result.get("rows", {}).values():
        if "rps" not in entry:
            lines.append(f"| {entry['label']} | {entry['travel']} | skipped: {entry.get('skipped', '?')} "
                         "| | | |")
            continue
        lines.append(
            f"| {entry['label']} | {entry['travel']} | {_range(entry['rps'])} | "
            f"{_range(entry['p50_ms'], 1)} | {_range(entry['p99_ms'], 1)} | {entry['errors']} |"
        )
    respawns = result.get("respawns")
    if respawns:
        lines += ["", "uWSGI workers respawned during the rounds (by `max-requests` or `reload-on-rss`; each "
                  "new worker loads Django before it serves): "
                  + ", ".join(f"{name} {count}" for name, count in respawns.items()) + "."]
    lines += ["", "Ratios, taken round by round (median, min–max over the rounds):", "",
              "| ratio | median | min–max |", "| --- | --- | --- |"]
    labels = {k: v["label"] for k, v in result.get("rows", {}).items()}
    for ratio in result.get("ratios", {}).values():
        lines.append(f"| {labels[ratio['of']]} / {labels[ratio['to']]} | {ratio['median']:.2f}x | "
                     f"{ratio['min']:.2f}–{ratio['max']:.2f}x |")
    return lines


def _variant_spikes(result):
    """Return {variant: {workers: run}} of the spike step."""
    found = {}
    for run in result.get("spike", []):
        found.setdefault(run.get("variant") or ("ours_varnish" if run["front"] == "varnish" else "ours"), {})[
            run["workers"]] = run
    return found


def _variants(result):
    variants = result.get("variants") or {}
    if not variants:
        return []
    rows, ratios, spikes = result.get("rows", {}), result.get("ratios", {}), _variant_spikes(result)
    visits = result.get("visitors", {})
    any_visit = next(iter(visits.values()), None)
    crowd = f"{any_visit['visitors']} visitors x {any_visit['pages']} pages" if any_visit else "visitors"
    ttl = next((run["ttl_s"] for run in result.get("spike", [])), 10)
    workers = result.get("plan", {}).get("workers", 2)
    lines = [
        "The same product pages, catalog, cache backend (the database cache on SQLite) and run. HIT req/s through "
        f"Nginx and uWSGI with {workers} workers (ours through Varnish: Varnish's HIT), as a fraction of that "
        "layer's floor "
        "and as a multiple of the variant's own uncached render. Renders per TTL window: the spike below, "
        f"{ttl} s TTL for every variant. Visitors: {crowd}, each visitor with their own `sessionid` (a cart of "
        "their own size), `csrftoken`, `_ga`, `_gid` and `cart_hint`, keeping the cookies answers set; hit rate = "
        "1 - renders / views; cache entries = Django cache rows created (+ Varnish objects); leaks = answers that "
        "showed another visitor's cart count, set another's cookie or held a CSRF token made from another's secret.",
        "",
        "| variant | how | HIT req/s | x floor | x its uncached | renders per window, 2 / 8 workers | "
        "hit rate | cache entries | leaks: cart count / Set-Cookie / CSRF token | answers with Vary: Cookie |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key in VARIANT_ORDER:
        meta = variants.get(key)
        if not meta:
            continue
        hit = rows.get(meta["hit"], {}).get("rps")
        floor, own = ratios.get(meta["floor_ratio"]), ratios.get(meta["uncached_ratio"])
        spike = spikes.get(key, {})
        per_window = " / ".join(f"{spike[w]['renders_per_window']:.2f}" if w in spike else "-" for w in (2, 8))
        visit = visits.get(key)
        if visit:
            leaks = " / ".join(f"{visit['leaks'][kind]:,}" for kind in LEAK_LABELS)
            objects = "" if visit["varnish_objects"] is None else f" + {visit['varnish_objects']:,} in Varnish"
            visited = (f"{visit['hit_rate'] * 100:.1f}% | {visit['django_entries']:,} in Django{objects} | "
                       f"{leaks} ({visit['leaky_views']:,} of {visit['views']:,} views) | "
                       f"{visit.get('vary_cookie', 0):,}")
        else:
            visited = "- | - | - | -"
        lines.append(f"| {meta['label']} | {meta['how']} | {_range(hit) if hit else '-'} | {_times(floor)} | "
                     f"{_times(own)} | {per_window} | {visited} |")
    return lines


def _times(ratio):
    """Return a ratio's median as "1.23x", or "-" when it was not measured."""
    return f"{ratio['median']:.2f}x" if ratio else "-"


def _pageviews(result):
    rows = {key: entry for key, entry in result.get("rows", {}).items() if entry.get("pageview")}
    if not rows:
        return []
    ratios = result.get("ratios", {})
    varnish = result.get("rows", {}).get("varnish_hit", {}).get("rps")
    lines = [
        "What a visitor's browser asks for per page view, as the page's script makes it (how the script's requests "
        "were derived: *How it was measured*), measured in the same rounds as the Varnish HIT "
        f"({_range(varnish) if varnish else '-'} req/s). Page views/s counts views, not requests; Django requests "
        "are the lines of Nginx's access log while the row ran: the cart API, and pages Varnish did not have "
        "(its refresh of the page once per TTL).",
        "",
        "| page view | page views/s: median (min–max) | requests per view | x the Varnish HIT | "
        "Django requests per 1,000 views sent: API + pages |",
        "| --- | --- | --- | --- | --- |",
    ]
    for key, entry in rows.items():
        if "views_per_s" not in entry:
            lines.append(f"| {entry['label']} | skipped: {entry.get('skipped', '?')} | | | |")
            continue
        views = entry["views"]
        api, pages = 1000 * entry["django_api"] / views, 1000 * entry["django_pages"] / views
        lines.append(
            f"| {entry['label']} | {_range(entry['views_per_s'])} | {entry['requests_per_view']:.2f} | "
            f"{_times(ratios.get(f'{key}_vs_varnish_hit'))} | {entry['django_per_1000_views']:,.3f}: "
            f"{api:,.3f} + {pages:,.3f} ({entry['django']:,} in {views:,} views) |"
        )
    return lines + _browser(result)


BROWSER_ROWS = (
    ("first_view", "new visitor, first view of a fresh browser"),
    ("new_visitor", "new visitor (no cookie), later views"),
    ("add_to_cart", "adding one product with the page's form (an action)"),
    ("visitor_with_cart", "visitor with a cart (hint cookie), browsing"),
    ("stale_hint", "the same visitor once the hint's refresh time has passed"),
)


def _browser(result):
    found = result.get("browser")
    if not found:
        return []
    lines = [
        "",
        f"Headless {found.get('chromium') or 'Chromium'} (`{' '.join(found.get('flags', []))}`, a fresh "
        "`--user-data-dir` per visitor) through "
        "the stack's Varnish, every HTML a Varnish HIT beforehand. Requests sent: Varnish's `MAIN.client_req` "
        "(each view of a product also fetches that product's photo, once); files: those Varnish did not have yet, "
        "from Nginx's disk; reached Django: Nginx's access log.",
        "",
        "| visitor | page views | requests sent | files from Nginx | reached Django: API | pages | badge shows |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    return lines + _table_lines(BROWSER_ROWS, found, lambda label, row: (
        f"| {label} | {row.get('views', '-')} | {row['sent']} | {row.get('files', '-')} | "
        f"{row['api']} | {row['pages']} | {row.get('badge', '')} |"))


def _table_lines(labels, rows, line):
    """Return line(label, row) for each (key, label) of `labels` whose key has a row in `rows`, in that order."""
    return [line(label, row) for key, label in labels if (row := rows.get(key))]


def _spike(result):
    runs = result.get("spike", [])
    if not runs:
        return []
    lines = [
        f"One product page, a TTL of {runs[0]['ttl_s']} s for every variant (`SHARED_PAGE_SECONDS` for ours, "
        f"`@cache_page` and the per-site cache's lifetime for the seed's), {runs[0]['connections']} connections "
        f"for {runs[0]['seconds']:.0f} s per run. Renders are counted by the app itself (a context processor of "
        "`bench.settings` logs each template render of the page). The page is cached (two GETs) just before "
        "each run, as a hot page is, so the renders counted are those its expiries cost.",
        "",
        "| through | uWSGI workers | requests | req/s | renders | per TTL window | limit |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        limit = "(shown beside ours)" if run.get("limit") is None else f"<= {run['limit']}"
        lines.append(
            f"| {run['through']} | {run['workers']} | {run['requests']:,} | {_num(run['rps'])} | {run['renders']} | "
            f"{run['renders_per_window']:.2f} | {limit} |"
        )
    return lines


def _costs(result):
    costs = result.get("costs", {})
    lines = []
    pages = costs.get("pages", {})
    if pages:
        lines += [
            "Each page requested inside one Django process with the cache off (`CACHE_URL=dummycache://`, so "
            "every request renders); the median of the timed requests. SQLite.",
            "",
            "| products | page | queries | median ms | p90 ms |",
            "| --- | --- | --- | --- | --- |",
        ]
        for key in ("small", "big"):
            if key not in pages:
                continue
            for name, page in pages[key]["pages"].items():
                lines.append(f"| {pages[key]['products']:,} | {name.replace('_', ' ')} (`{page['url']}`) | "
                             f"{page['queries']} | {page['median_ms']:.1f} | {page['p90_ms']:.1f} |")
    lines += _hitpath(costs.get("hitpath"))
    culling = costs.get("culling", [])
    if culling:
        lines += [
            "",
            "The database cache with more pages than it may hold: each of the pages visited once, then again in "
            "another order. Two rows per page (plain and gzip).",
            "",
            "| MAX_ENTRIES | CULL_FREQUENCY | pages | hit rate, second visit | rows kept | table size | "
            "per page | queries per HIT |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for run in culling:
            hit_queries = "-" if run["hit_queries"] is None else run["hit_queries"]
            # What one cached page takes (its two rows), from what the table holds at the end.
            per_page = run["value_bytes"] / run["rows"] * 2 if run["rows"] else 0
            lines.append(
                f"| {run['max_entries']:,} ({run['label']}) | {run['cull_frequency']} | {run['urls']:,} | "
                f"{run['hit_rate'] * 100:.0f}% | {run['rows']:,} | {run['value_bytes'] / 1e6:.1f} MB | "
                f"{per_page / 1024:.1f} KiB | {hit_queries} |"
            )
    return lines


HITPATH_ROWS = (
    ("floor", "Django's floor: trivial view, no middleware"),
    ("bare", "trivial view, the store's middleware"),
    ("hit_locmem", "HIT, locmem"),
    ("hit_db", "HIT, database cache (SQLite)"),
    ("hit_redis", "HIT, Redis"),
    ("hit_memcached", "HIT, memcached"),
    ("floor_read_locmem", "the floor reading the page from locmem with one get, no middleware"),
    ("floor_read_db", "the floor reading the page from the database cache (SQLite) with one get, no middleware"),
    ("floor_read_redis", "the floor reading the page from Redis with one get, no middleware"),
    ("floor_read_memcached", "the floor reading the page from memcached with one get, no middleware"),
)


def _hitpath(hitpath):
    """What a HIT costs Django beyond the floor, in-process, and how much of it is the cache's."""
    if not hitpath:
        return []
    floor = hitpath.get("floor", {}).get("us_per_request")
    lines = [
        "",
        "Django's own time per request, in-process: the WSGI handler called as uWSGI calls it (no server, no "
        "network but the cache's), the median of five batches; the bench settings (the store's middleware, with "
        "WhiteNoise below the hits). The time in cache calls is measured around the cache backend's methods. "
        "What a HIT costs beyond the floor is the work that bounds its ratio to the floor through the stack.",
        "",
        "| request | middleware | us per request | of which cache calls | beyond the floor | x the floor's time |",
        "| --- | --- | --- | --- | --- | --- |",
    ]

    def line(label, row):
        us = row["us_per_request"]
        beyond = f"{us - floor:+.0f} us" if floor else "-"
        times = f"{us / floor:.2f}x" if floor else "-"
        return (f"| {label} (`{row['path']}`, {row['django_cache']}) | {row['middleware']} | {us:.0f} | "
                f"{row['cache_us_per_request']:.0f} | {beyond} | {times} |")

    return lines + _table_lines(HITPATH_ROWS, hitpath, line)


def _rss(result):
    runs = result.get("rss", [])
    if not runs:
        return []
    lines = [
        f"uWSGI from deploy/uwsgi/shop.ini ({result.get('plan', {}).get('workers', 2)} workers, database cache, "
        "TTL 60 s) through Nginx; requests spread "
        "over every product page, every listing page and home; mean resident memory of the workers, read from "
        "/proc. Warm-up: the first tenth of the requests. The run as shipped (with `reload-on-rss`) is a "
        "shorter check of the same. Each run stops at its request count or after its time cap, whichever "
        "comes first.",
        "",
        "| uWSGI | requests | after warm-up | at the end | growth | largest worker | worker processes |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        lines.append(
            f"| {run['label']} | {run['requests']:,} | {run['warm_mib']:.1f} MiB | {run['end_mib']:.1f} MiB | "
            f"{run['growth'] * 100:+.1f}% | {run['max_mib']:.1f} MiB | {run['workers_started']} |"
        )
    return lines


def _purge(result):
    purge = result.get("purge")
    if not purge:
        return []
    saves = purge["samples"]
    save_ms = sorted(s["save_seconds"] * 1000 for s in saves)
    return [
        f"{len(saves)} saves of one product (`Product.save()` in a Django process with the stack's settings); the "
        "clock runs from before `save()` until a GET through Varnish shows the new price. The page was a Varnish "
        f"HIT before {sum(s['was_hit_before'] for s in saves)} of the {len(saves)} saves.",
        "",
        "| median | p99 (slowest) | `save()` alone, median | GETs until the new price, max |",
        "| --- | --- | --- | --- |",
        f"| {purge['median_s'] * 1000:.1f} ms | {purge['p99_s'] * 1000:.1f} ms | {save_ms[len(save_ms) // 2]:.1f} ms | "
        f"{max(s['polls'] for s in saves)} |",
    ]


def _paired(result):
    paired = result.get("paired")
    if not paired:
        return []
    labels = {k: v["label"] for k, v in result.get("rows", {}).items()}
    lines = [
        f"Each row in alternation with its floor: the floor, the row, the floor, ... ({result['plan']['rounds']} "
        f"runs of {result['plan']['seconds']} s per row), each run of the row divided by the mean of the floor's "
        "runs just before and after it, so the machine's drift cancels. The floor's reads (one get of a copy of "
        "the page from one backend, no middleware, nothing of pagecache) bound what a HIT from that backend can "
        "reach here.",
        "",
        "| row | against | ratio: median (min–max) | row req/s | floor req/s |",
        "| --- | --- | --- | --- | --- |",
    ]
    for found in paired.values():
        lines.append(f"| {labels[found['of']]} | {labels[found['to']]} | {found['median']:.2f}x "
                     f"({found['min']:.2f}–{found['max']:.2f}x) | {found['rps']:,.0f} | {found['floor_rps']:,.0f} |")
    return lines


def _vcl_cost(result):
    cost = result.get("vcl_cost")
    if not cost:
        return []
    lines = [
        f"Instructions varnishd's child executes per HIT on the product page, counted by callgrind "
        f"(bench/vclcost.py): {cost['hits']:,} hits per VCL, twice, in one varnishd with both VCLs loaded, "
        f"no `Accept-Encoding` as wrk sends. The lower of each VCL's runs (the count holds Varnish's "
        f"background threads too, whose work varies a little with a run's wall time): the builtin VCL alone "
        f"{cost['builtin']:,.0f}; the project's "
        f"{cost['shop']:,.0f}, {cost['ratio']:.2f}x (runs: builtin "
        f"{', '.join(f'{r:,.0f}' for r in cost['runs']['builtin'])}; ours "
        f"{', '.join(f'{r:,.0f}' for r in cost['runs']['shop'])}). User space only: the kernel's part of a hit, "
        "the same for both, is not counted. Each subroutine of the project's VCL per hit, with what it calls: "
        "the methods (`vcl_recv`, `vcl_hash`, `vcl_hit`, `vcl_deliver`) include builtin.vcl's part, which runs "
        "after ours and in the floor too (`vcl_builtin_*`, `vcl_req_*`):",
        "",
        "| subroutine | instructions per hit |",
        "| --- | --- |",
    ]
    for name, count in sorted(cost["subroutines"].items(), key=lambda item: -item[1]):
        lines.append(f"| `{name}` | {count:,} |")
    return lines


def markdown(result, chart_name=None):
    """Return the whole report as Markdown."""
    minutes = result.get("duration_s", 0) / 60
    lines = [
        "# Benchmark: what each layer buys",
        "",
        f"`make bench`{' (quick mode: a pipeline check, not figures to quote)' if result.get('quick') else ''}, "
        f"{result['date']}, {minutes:.1f} minutes{_git_line(result)}. {_machine_line(result)}",
        "",
    ]
    if chart_name:
        lines += [f"![req/s per layer, renders per TTL window, worker memory]({chart_name})", ""]
    lines += ["## Targets", "", targets_table(result), ""]
    sections = [("The seed's way against ours", _variants), ("A page view as a browser makes it", _pageviews),
                ("Throughput", _throughput), ("Against the floor, in alternation", _paired),
                ("What the VCL costs per HIT, in instructions", _vcl_cost),
                ("The spike, counted", _spike), ("Purge latency", _purge),
                ("Costs that grow", _costs), ("Worker memory", _rss)]
    for title, build in sections:
        body = build(result)
        if body:
            lines += [f"## {title}", "", *body, ""]
    lines += ["## How it was measured", "", *[f"- {m}" for m in METHOD], ""]
    notes = result.get("notes", []) + [f"error: {e}" for e in result.get("errors", [])]
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(lines)


def chart(result, path):
    """Draw req/s per row, renders per window, worker memory and the seed's way against ours; False if no data."""
    rows = [e for e in result.get("rows", {}).values() if "rps" in e]
    if not rows:
        return False
    spike, rss = result.get("spike", []), result.get("rss", [])
    variants = [key for key in VARIANT_ORDER if key in (result.get("variants") or {})]
    fig = plt.figure(figsize=(13, 18 if variants else 12), layout="constrained")
    # Each part lays itself out: the long row labels of the first take no room from the others.
    parts = fig.subfigures(3 if variants else 2, 1, height_ratios=[2.6, 1, 1.1] if variants else [2.2, 1])
    _bars(parts[0].subplots(), rows)
    middle = parts[1].subplots(1, 2)
    ours_spike = [run for run in spike if run.get("limit") is not None]
    if ours_spike:
        _spike_bars(middle[0], ours_spike)
    else:
        middle[0].set_axis_off()
    if rss:
        _rss_lines(middle[1], rss)
    else:
        middle[1].set_axis_off()
    if variants:
        _seed_panel(parts[2], result, variants)
    quick = " (quick mode)" if result.get("quick") else ""
    fig.suptitle(f"Corner Shop benchmark{quick}, {result['date'][:10]}, {result['machine']['cores']} cores")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


# Short names for the panel's axes.
VARIANT_SHORT = {"seed": "the seed's\ncode", "halfway": "half-way", "site": "per-site\ncache",
                 "site_seed": "per-site,\nseed's page", "ours": "ours,\nDjango", "ours_varnish": "ours,\nVarnish"}


def _seed_panel(panel, result, variants):
    """The seed's way against ours: renders per window, hit rate, cache entries, leaks, HIT req/s."""
    panel.suptitle("The seed's way against ours", fontsize=11)
    axes = panel.subplots(1, 5)
    meta = result["variants"]
    names = [VARIANT_SHORT.get(key, key) for key in variants]
    colours = [VARIANT_COLOURS[key] for key in variants]
    positions = range(len(variants))
    spikes, visits = _variant_spikes(result), result.get("visitors", {})
    for offset, workers, hatch in ((-0.2, 2, ""), (0.2, 8, "//")):
        values = [spikes.get(key, {}).get(workers, {}).get("renders_per_window", 0) for key in variants]
        axes[0].bar([p + offset for p in positions], values, width=0.4, color=colours, hatch=hatch,
                    edgecolor="white", label=f"{workers} workers")
    axes[0].axhline(1.0, color="black", linestyle="dashed", linewidth=1)
    axes[0].set_title("renders per TTL window\n(plain: 2 workers, hatched: 8)", fontsize=9)
    crowd = next(iter(visits.values()), {})
    panels = (
        (axes[1], [visits.get(k, {}).get("hit_rate", 0) * 100 for k in variants],
         f"hit rate (%),\n{crowd.get('visitors', '')} visitors", "linear"),
        (axes[2], [visits.get(k, {}).get("entries", 0) for k in variants], "cache entries\ncreated", "linear"),
        (axes[3], [visits.get(k, {}).get("leaky_views", 0) for k in variants],
         f"answers with another's\ndata (of {crowd.get('views', 0):,})", "linear"),
        (axes[4], [result["rows"].get(meta[k]["hit"], {}).get("rps", {}).get("median", 0) for k in variants],
         "HIT req/s\n(log)", "log"),
    )
    for ax, values, title, scale in panels:
        # Nothing to draw on a log scale for a variant without the figure (no HIT row).
        heights = [v if v > 0 or scale == "linear" else float("nan") for v in values]
        ax.bar(positions, heights, color=colours)
        ax.set_yscale(scale)
        ax.set_title(title, fontsize=9)
        # Hit rates differ in their first decimal (99.5% is 50 renders in 10,000 views).
        digits = 1 if ax is axes[1] else 0
        for x, value in zip(positions, values, strict=True):
            if value > 0 or scale == "linear":
                ax.text(x, value, f"{value:,.{digits}f}", ha="center", va="bottom", fontsize=7)
    for ax in axes:
        ax.set_xticks(list(positions), names, fontsize=7, rotation=90)


def _bars(ax, rows):
    rows = rows[::-1]
    # Page-view rows are drawn in page views per second, the others in requests per second.
    rates = [e.get("views_per_s", e["rps"]) for e in rows]
    medians = [r["median"] for r in rates]
    # A round with no answer at all (0 req/s) cannot be drawn on a log scale: clip its whisker.
    low = [r["median"] - max(r["min"], r["median"] / 100) for r in rates]
    high = [r["max"] - r["median"] for r in rates]
    colours = [GROUP_COLOURS.get(e["group"], "grey") for e in rows]
    positions = range(len(rows))
    ax.barh(positions, medians, xerr=[low, high], color=colours, capsize=3)
    labels = [e["label"] + (" [page views/s]" if "views_per_s" in e else "") for e in rows]
    ax.set_yticks(list(positions), labels, fontsize=9)
    ax.set_xscale("log")
    ax.set_xlabel("requests per second, page views per second where marked (median of the rounds, bars: min–max; "
                  "log scale)")
    for y, rate in zip(positions, rates, strict=True):
        ax.text(rate["max"] * 1.15, y, f"{rate['median']:,.0f}", va="center", fontsize=8)
    ax.set_xlim(right=max(r["max"] for r in rates) * 3)
    ax.grid(axis="x", which="both", alpha=0.3)
    ax.set_title("Throughput per layer")


def _spike_bars(ax, spike):
    labels = [f"{'Varnish' if r['front'] == 'varnish' else 'Django'}\n{r['workers']} workers" for r in spike]
    values = [r["renders_per_window"] for r in spike]
    colours = ["#4c72b0" if r["front"] == "varnish" else "#55a868" for r in spike]
    ax.bar(range(len(spike)), values, color=colours)
    ax.set_xticks(range(len(spike)), labels, fontsize=9)
    for x, run in enumerate(spike):
        ax.hlines(run["limit"], x - 0.4, x + 0.4, colors="black", linestyles="dashed")
        ax.text(x, run["renders_per_window"], f"{run['renders']} renders", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel(f"renders per {spike[0]['ttl_s']} s window (dashed: limit)")
    ax.set_title(f"Hot page, {spike[0]['connections']} connections, {spike[0]['seconds']:.0f} s")


def _rss_lines(ax, rss):
    for run in rss:
        xs = [s["requests"] for s in run["samples"]]
        ys = [s["mean_mib"] for s in run["samples"]]
        ax.plot(xs, ys, marker="o", markersize=3, label=run["label"])
    ax.set_xlabel("requests served")
    ax.set_ylabel("mean worker RSS (MiB)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    ax.set_title("uWSGI worker memory")


if __name__ == "__main__":
    source = Path(sys.argv[1])
    data = json.loads(source.read_text())
    drawn = chart(data, source.with_suffix(".png"))
    source.with_suffix(".md").write_text(markdown(data, source.with_suffix(".png").name if drawn else None))
