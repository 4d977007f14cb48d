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
}


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
    "shared machine, the ratios much less.",
]


def _num(value, digits=0):
    return f"{value:,.{digits}f}"


def _range(figure, digits=0):
    return f"{_num(figure['median'], digits)} ({_num(figure['min'], digits)}–{_num(figure['max'], digits)})"


def _met(met):
    return {True: "**met**", False: "**not met**", None: "not measured"}[met]


def targets_table(result):
    lines = [
        "| target | goal | measured | | the most this machine allows |",
        "| --- | --- | --- | --- | --- |",
    ]
    for t in result.get("targets", []):
        lines.append(
            f"| {t['target']} | {t['goal']} | {t['measured'] or '-'} | {_met(t['met'])} | {t.get('limit') or ''} |"
        )
    return "\n".join(lines)


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


def _spike(result):
    runs = result.get("spike", [])
    if not runs:
        return []
    lines = [
        f"One product page, `SHARED_PAGE_SECONDS={runs[0]['ttl_s']}`, {runs[0]['connections']} connections for "
        f"{runs[0]['seconds']:.0f} s per run. Renders are counted by the app itself (a context processor of "
        "`bench.settings` logs each template render of the page). The page is cached (two GETs) just before "
        "each run, as a hot page is, so the renders counted are those its expiries cost.",
        "",
        "| through | uWSGI workers | requests | req/s | renders | per TTL window | limit |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        lines.append(
            f"| {run['through']} | {run['workers']} | {run['requests']:,} | {_num(run['rps'])} | {run['renders']} | "
            f"{run['renders_per_window']:.2f} | <= {run['limit']} |"
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


def _rss(result):
    runs = result.get("rss", [])
    if not runs:
        return []
    lines = [
        "uWSGI from deploy/uwsgi/shop.ini (2 workers, database cache, TTL 60 s) through Nginx; requests spread "
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


def markdown(result, chart_name=None):
    """Return the whole report as Markdown."""
    minutes = result.get("duration_s", 0) / 60
    lines = [
        "# Benchmark: what each layer buys",
        "",
        f"`make bench`{' (quick mode: a pipeline check, not figures to quote)' if result.get('quick') else ''}, "
        f"{result['date']}, {minutes:.1f} minutes. {_machine_line(result)}",
        "",
    ]
    if chart_name:
        lines += [f"![req/s per layer, renders per TTL window, worker memory]({chart_name})", ""]
    lines += ["## Targets (issue 5)", "", targets_table(result), ""]
    sections = [("Throughput", _throughput), ("The spike, counted", _spike), ("Purge latency", _purge),
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
    """Draw req/s per row, renders per window and worker memory into one PNG; False if no data."""
    rows = [e for e in result.get("rows", {}).values() if "rps" in e]
    if not rows:
        return False
    spike, rss = result.get("spike", []), result.get("rss", [])
    fig = plt.figure(figsize=(12, 11), layout="constrained")
    grid = fig.add_gridspec(2, 2, height_ratios=[2.2, 1])
    _bars(fig.add_subplot(grid[0, :]), rows)
    if spike:
        _spike_bars(fig.add_subplot(grid[1, 0]), spike)
    if rss:
        _rss_lines(fig.add_subplot(grid[1, 1]), rss)
    quick = " (quick mode)" if result.get("quick") else ""
    fig.suptitle(f"Corner Shop benchmark{quick}, {result['date'][:10]}, {result['machine']['cores']} cores")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _bars(ax, rows):
    rows = rows[::-1]
    medians = [e["rps"]["median"] for e in rows]
    # A round with no answer at all (0 req/s) cannot be drawn on a log scale: clip its whisker.
    low = [e["rps"]["median"] - max(e["rps"]["min"], e["rps"]["median"] / 100) for e in rows]
    high = [e["rps"]["max"] - e["rps"]["median"] for e in rows]
    colours = [GROUP_COLOURS.get(e["group"], "grey") for e in rows]
    positions = range(len(rows))
    ax.barh(positions, medians, xerr=[low, high], color=colours, capsize=3)
    ax.set_yticks(list(positions), [e["label"] for e in rows], fontsize=9)
    ax.set_xscale("log")
    ax.set_xlabel("requests per second (median of the rounds, bars: min–max; log scale)")
    for y, entry in zip(positions, rows, strict=True):
        ax.text(entry["rps"]["max"] * 1.15, y, f"{entry['rps']['median']:,.0f}", va="center", fontsize=8)
    ax.set_xlim(right=max(e["rps"]["max"] for e in rows) * 3)
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
