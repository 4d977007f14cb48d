"""uWSGI reloading and failing (docs/design.md, points 6 and 4), watched from outside.

Reloads must drop no request. When uWSGI is down, Varnish must go on serving the pages it has,
past their TTL (grace), Nginx the static files, and both must recover by themselves once uWSGI
is back. The outage runs on a second stack whose pages live 3 s, so grace is really needed.
"""

import itertools
import os
import re
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from tests.stack.fixtures import (
    BackgroundLoad,
    backend_health,
    http_session,
    stylesheet_path,
    varnish_hit,
    wait_until,
    wait_until_healthy,
)

pytestmark = pytest.mark.stack

LOAD_THREADS = 3
# Each loader's pause between requests: enough load to keep both workers busy, not so much
# that the 2 cores spend the reload starving the new workers.
LOAD_PAUSE = 0.02


class Load(BackgroundLoad):
    """Keep GETting never-cached URLs straight from Nginx (no Varnish to hide a failure)."""

    PATHS = ("/api/cart/", "/healthz")

    def __init__(self, stack):
        self.stack = stack
        self.results = []  # (started, ended, status code or exception)
        super().__init__([(self._run, ())] * LOAD_THREADS)

    def sent(self):
        return len(self.results)

    def _run(self):
        http = http_session()
        for number in itertools.count():
            if self._stop.is_set():
                return
            began = time.monotonic()
            try:
                outcome = http.get(self.stack.nginx_url + self.PATHS[number % 2], timeout=10).status_code
            except requests.RequestException as error:
                outcome = repr(error)
            self.results.append((began, time.monotonic(), outcome))
            time.sleep(LOAD_PAUSE)

    def in_flight_between(self, began, ended):
        """Count the requests that were in flight at some moment of [began, ended]."""
        return sum(1 for start, end, _ in self.results if start <= ended and end >= began)


def _touch(path):
    """Touch a uWSGI touch-file so that uWSGI sees it: its check compares whole seconds."""
    last = path.stat().st_mtime if path.exists() else 0
    mtime = max(time.time(), last + 1)
    path.touch()
    os.utime(path, (mtime, mtime))


def _full_reload_file(stack):
    """The file of `touch-reload` in the rendered shop.ini (/run/shop/reload-all in production)."""
    ini = (stack.conf_dir / "uwsgi" / "shop.ini").read_text()
    match = re.search(r"^touch-reload\s*=\s*(\S+)", ini, re.MULTILINE)
    assert match, "shop.ini has no touch-reload"
    return Path(match.group(1))


def _workers_replaced(stack, old_pids):
    """Return the new worker PIDs once every worker is new and accepting, else None."""
    try:
        workers = stack.stats()["workers"]
    except (OSError, ValueError):
        return None  # the master re-executes itself during a full reload: no stats socket
    if len(workers) == stack.processes and all(w["accepting"] and w["pid"] not in old_pids for w in workers):
        return [w["pid"] for w in workers]
    return None


def _reload_under_load(stack, reload):
    master, old_pids = stack.status()["uwsgi"], stack.worker_pids()
    with Load(stack) as load:
        began = time.monotonic()
        new_pids = reload(old_pids)
        ended = time.monotonic()
        time.sleep(0.3)  # a few requests to the new workers
    outcomes = Counter(outcome for _, _, outcome in load.results)
    print(f"reload in {ended - began:.1f} s; {sum(outcomes.values())} requests: {dict(outcomes)}")

    assert outcomes == {200: len(load.results)}, outcomes
    # Every loader had requests in flight while the workers were replaced (some of them waited
    # in the socket's backlog for a new worker).
    assert load.in_flight_between(began, ended) >= LOAD_THREADS
    assert set(new_pids).isdisjoint(old_pids)
    assert stack.status()["uwsgi"] == master  # reloaded, not restarted


def test_chain_reload_under_load_drops_no_request(stack):
    def chain_reload(old_pids):
        stack.touch_reload(wait=True, timeout=30)
        return stack.worker_pids()

    _reload_under_load(stack, chain_reload)


def test_full_reload_under_load_drops_no_request(stack):
    def full_reload(old_pids):
        _touch(_full_reload_file(stack))
        return wait_until(lambda: _workers_replaced(stack, old_pids), 30, "new uWSGI workers", step=0.1)

    _reload_under_load(stack, full_reload)


def _product_paths(stack, count):
    """Return `count` product paths, read from a category page straight from Nginx."""
    http = http_session()
    home = http.get(stack.nginx_url + "/").text
    category = re.search(r'href="(/categories/[^"/]+/)"', home).group(1)
    paths = list(dict.fromkeys(re.findall(r'href="(/products/[^"/]+/)"', http.get(stack.nginx_url + category).text)))
    assert len(paths) >= count, paths
    return paths[:count]


def test_while_uwsgi_is_down_varnish_and_nginx_serve_what_they_have_then_recover(short_ttl_stack):
    stack = short_ttl_stack
    http = http_session()
    *warm, cold = _product_paths(stack, 4)
    css = stylesheet_path(stack)
    ttl = int(re.search(r"s-maxage=(\d+)", http.get(stack.url(warm[0])).headers["Cache-Control"]).group(1))
    assert ttl == 3
    bodies = {
        path: wait_until(lambda path=path: varnish_hit(http, stack.url(path)), 5, f"{path} cached").content
        for path in warm
    }

    served, health = [], set()

    def serve_warm_pages():
        """GET each warm page, and /healthz, through Varnish; return the pages' ages."""
        ages = []
        for path in warm:
            response = http.get(stack.url(path))
            ages.append(int(response.headers.get("Age", -1)))
            served.append((path, response.status_code, response.headers.get("X-Cache"), response.content))
        health.add(http.get(stack.url("/healthz")).status_code)
        return ages

    def backend_sick():
        serve_warm_pages()
        return backend_health(stack) == "sick"

    def served_stale():
        # Past their TTL: grace, not fresh hits. (The probe may call Nginx sick before that.)
        return min(serve_warm_pages()) > ttl

    stack.stop_uwsgi()
    try:
        stopped = time.monotonic()
        django_via_nginx = http.get(stack.nginx_url + "/healthz").status_code
        css_via_nginx = http.get(stack.nginx_url + css)
        wait_until(backend_sick, 20, "Varnish marking its backend sick", step=0.25)
        sick_after = time.monotonic() - stopped
        wait_until(served_stale, ttl + 5, "the cached pages served past their TTL", step=0.25)
        sick_health = http.get(stack.url("/healthz")).status_code
        cold_status = http.get(stack.url(cold)).status_code
    finally:
        stack.start_uwsgi()
    print(f"sick {sick_after:.1f} s after uWSGI stopped; {len(served)} cached pages served meanwhile")

    # Cached pages: every one served, unchanged, from Varnish, the last ones past their TTL.
    assert [(p, status, cache) for p, status, cache, _ in served if status != 200 or cache != "HIT"] == []
    assert [p for p, _, _, body in served if body != bodies[p]] == []
    # Static files: Nginx serves them with nothing behind it.
    assert django_via_nginx == 502
    assert css_via_nginx.status_code == 200 and b".site-header" in css_via_nginx.content
    # Never-cached and uncached URLs tell the truth: /healthz is passed, grace holds only what it has.
    assert 200 not in health and sick_health == 503
    assert cold_status == 503

    # Recovery without help: the probe sees uWSGI again, the store answers, stale pages refresh.
    began = time.monotonic()
    wait_until_healthy(stack, timeout=20)
    assert backend_health(stack) == "healthy"
    assert http.get(stack.url(cold)).status_code == 200

    def refreshed():
        response = http.get(stack.url(warm[0]))
        return response.status_code == 200 and int(response.headers["Age"]) <= ttl

    wait_until(refreshed, 10, "a stale page refreshed after recovery")
    print(f"recovered {time.monotonic() - began:.1f} s after uWSGI was back")
