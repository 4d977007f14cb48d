"""Stacks the fault and race tests may break: on a MariaDB and a Redis of their own (harness/servers.py).

The machine's MariaDB (:3306) and Redis (:6379) serve every test run, so "the database is down"
and "Redis is down" are played on throwaway instances instead: harness.servers' MariaDB, with its
own data folder and port, and Redis on another port, each started, killed and restarted by PID.

Two stacks of their own, started once per session when a test asks for them and stopped by PID
at its end, both with 4 uWSGI workers so that requests really race (a test module imports
`fault_stack_fixture` or `sqlite_stack_fixture` and asks for `fault_stack` or `sqlite_stack`):

    fault_stack    Varnish :36081, Nginx :38081; the throwaway MariaDB, the throwaway Redis as
                   Django's cache, shared pages that live 3 s (grace is needed at once) and
                   uWSGI's harakiri at 3 s (see TunedStack)
    sqlite_stack   Varnish :36082, Nginx :38082; a SQLite file, the database cache table

Ports of MariaDB and Redis are picked free at start. After a failure the servers' logs are
copied to test-artifacts/, as tests/stack/fixtures.py does for its stacks.
"""

import json
import tempfile
import threading
from pathlib import Path

import pytest

from deploy.stack import Stack
from harness.servers import MariaDB, Redis
from tests.stack.fixtures import ROOT, http_session, stop_and_keep_logs

DEMO_PRODUCTS = 24
# No binary log to write, and quicker DDL for migrate.
_MARIADB_OPTIONS = ("--skip-log-bin", "--max-connections=100", "--innodb-doublewrite=0")
# Seconds uWSGI gives a request before it kills the worker (production: 8, deploy/uwsgi/shop.ini).
HARAKIRI_SECONDS = 3


# ------------------------------------------------------------------------------------------------
# Fixtures
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session", name="fault_stack")
def fault_stack_fixture(request):
    """A stack on a MariaDB and a Redis that tests may kill; see the module docstring."""
    return _start_fault_stack(request)


@pytest.fixture(scope="session", name="sqlite_stack")
def sqlite_stack_fixture(request):
    """A stack on a SQLite file, with 4 uWSGI workers."""
    run_dir = _run_dir("sqlite")
    # The default cache (the database table), whatever CACHE_URL the test run has.
    env = {"DATABASE_URL": f"sqlite:///{run_dir / 'db.sqlite3'}", "CACHE_URL": "dbcache://shop_cache"}
    stack = TunedStack(ROOT, run_dir=run_dir, varnish_port=36082, nginx_port=38082, processes=4, env=_env(env))
    request.addfinalizer(lambda: _stop(request.session, "sqlite", stack))
    _start(stack)
    return stack


def _start_fault_stack(request):
    run_dir = _run_dir("faults")
    mariadb = MariaDB(run_dir / "mariadb", options=_MARIADB_OPTIONS)
    redis = Redis(run_dir / "redis")
    stack = TunedStack(
        ROOT,
        run_dir=run_dir,
        varnish_port=36081,
        nginx_port=38081,
        processes=4,
        env=_env({"SHARED_PAGE_SECONDS": "3", "NOT_FOUND_CACHE_SECONDS": "2"}),
    )
    stack.mariadb, stack.redis = mariadb, redis

    def stop_all():
        try:
            _stop(request.session, "faults", stack)
        finally:
            mariadb.stop()
            redis.stop()

    request.addfinalizer(stop_all)
    mariadb.install()
    mariadb.start()
    redis.start()
    stack.env["DATABASE_URL"] = mariadb.create_database("shop_faults")
    stack.env["CACHE_URL"] = redis.url
    _start(stack)
    return stack


def _env(settings):
    return {
        "SHOP_DEMO": "1",
        # A replica of the developer's database is not a replica of this one.
        "DATABASE_REPLICA_URL": "",
        # uWSGI's harakiri, cut so a test can wait for it (shop.ini reads UWSGI_HARAKIRI).
        "UWSGI_HARAKIRI": str(HARAKIRI_SECONDS),
        **settings,
    }


def _run_dir(name):
    run_dir = Path(tempfile.mkdtemp(prefix=f"shop-{name}-"))
    # varnishd compiles the VCL as its unprivileged user, who must reach the rendered files.
    run_dir.chmod(0o755)
    return run_dir


def _start(stack):
    try:
        stack.prepare_django()
        stack.manage("seed_demo", "--products", str(DEMO_PRODUCTS), "-v0")
        stack.start(manage=False)
    except BaseException:
        stack.stop()
        raise


def _stop(session, name, stack):
    stop_and_keep_logs(session, name, stack)


# ------------------------------------------------------------------------------------------------
# The stack, with a harakiri a test can wait for
# ------------------------------------------------------------------------------------------------


class TunedStack(Stack):
    """deploy/stack.py's Stack, with shortcuts the fault tests share.

    Its environment (see _env) sets UWSGI_HARAKIRI, which shop.ini reads: harakiri is cut to
    HARAKIRI_SECONDS, the one difference from production.
    """

    def shell(self, code):
        """Run Python in `manage.py shell` with the stack's settings; return its last line as JSON."""
        return json.loads(self.manage("shell", "-c", code).strip().splitlines()[-1])

    def fresh_slugs(self, count):
        """Return `count` slugs of in-stock products no test has used yet (their pages start uncached)."""
        if not hasattr(self, "_unused"):
            self._unused = self.shell(
                "import json\n"
                "from shop.models import Product\n"
                "rows = Product.objects.active().filter(stock__gt=0).order_by('pk')\n"
                "print(json.dumps(list(rows.values_list('slug', flat=True))))\n"
            )
        assert len(self._unused) >= count, "the demo catalog ran out of unused products"
        taken, self._unused = self._unused[:count], self._unused[count:]
        return taken

    def shopper_with_one_in_cart(self):
        """Return (a fresh product, another fresh product, and a new Shopper who added one of that one)."""
        untouched, in_cart = self.fresh_slugs(2)
        shopper = Shopper(self).start()
        shopper.add(in_cart, 1)
        return untouched, in_cart, shopper


# ------------------------------------------------------------------------------------------------
# A visitor of the store, with a ledger
# ------------------------------------------------------------------------------------------------


class Shopper:
    """A visitor with cookies of its own who calls the cart API as cart.js does, and counts.

    `ledger` holds, per product slug, the quantities of the adds the server answered 200:
    what the cart must hold, whatever happened to the others.
    """

    def __init__(self, stack):
        self.stack = stack
        self.http = http_session()
        self.ledger = {}
        self.failures = []
        self._ledger_lock = threading.Lock()

    def start(self):
        """Get the csrftoken cookie, as the first page view does; return self."""
        response = self.http.get(self.stack.url("/api/cart/"), timeout=10)
        assert response.status_code == 200, response.text
        return self

    def clone(self):
        """Return another connection of this visitor: its cookies, its ledger, a session of its own."""
        twin = Shopper(self.stack)
        twin.http.cookies.update(self.http.cookies)
        twin.ledger, twin.failures, twin._ledger_lock = self.ledger, self.failures, self._ledger_lock
        return twin

    def add(self, slug, quantity=1, timeout=30, key=None):
        """POST an add; count it in the ledger if it succeeded; return the response or the error.

        With an Idempotency-Key `key`, a replayed answer (a retry of an add already counted) is
        not counted again.
        """
        headers = {"X-CSRFToken": self.http.cookies["csrftoken"], "Origin": self.stack.varnish_url}
        if key:
            headers["Idempotency-Key"] = key
        try:
            response = self.http.post(
                self.stack.url("/api/cart/items/"),
                json={"product": slug, "quantity": quantity},
                headers=headers,
                timeout=timeout,
            )
        except Exception as error:  # requests' errors: the add may or may not have happened
            self.failures.append(repr(error))
            return error
        if response.status_code == 200 and response.headers.get("Idempotent-Replayed") != "true":
            with self._ledger_lock:
                self.ledger[slug] = self.ledger.get(slug, 0) + quantity
        else:
            self.failures.append((response.status_code, response.text[:200]))
        return response

    def cart(self):
        """Return the server's cart as {slug: quantity}, failing on duplicate lines."""
        response = self.http.get(self.stack.url("/api/cart/"), timeout=10)
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        slugs = [item["product"] for item in items]
        assert len(slugs) == len(set(slugs)), f"duplicate cart lines: {slugs}"
        return {item["product"]: item["quantity"] for item in items}
