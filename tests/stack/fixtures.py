"""The real stack under test: Varnish -> Nginx -> uWSGI -> Django, started from deploy/ by deploy/stack.py.

Registered once for the whole run by the root conftest.py (`pytest_plugins`). The main stack (`stack`) gets
a run folder in /tmp, ports of its own (so a developer's `make stack` on 6081/8081 keeps
running) and a fresh database: `shop_stack` on the MySQL server of DATABASE_URL, or SQLite in
the run folder, with 200 demo products and an admin user. `short_ttl_stack` is a second set of
servers on that database; `short_session_stack` a third, on a database of its own. Each stops
by PID when its fixture's scope ends, whether the tests passed or not; after a failure the
servers' logs are kept in test-artifacts/."""

import json
import os
import re
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import pytest
import requests
from django.conf import settings as django_settings

from deploy.stack import Stack

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"

ADMIN_USERNAME = "stack-admin"
ADMIN_PASSWORD = "stack-admin-password-1"
DEMO_PRODUCTS = 200

# Seconds each stack took to prepare its database (None: it shares one) and to start its servers.
TIMINGS = {}


# ------------------------------------------------------------------------------------------------
# Fixtures
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def stack(request):
    """The store behind Varnish :16081 and Nginx :18081, with the default TTLs."""
    return _shared_stack(request, "stack", varnish_port=16081, nginx_port=18081)


@pytest.fixture(scope="module")
def short_ttl_stack(request, stack):
    """A second Varnish, Nginx and uWSGI on the main stack's database, whose pages live 3 s.

    Long enough to be cached, short enough that a test sees Varnish serve them past their TTL
    (grace) within seconds. It reads the catalog the main stack seeded and keeps its cache
    entries under a key prefix of its own.
    """
    return _shared_stack(
        request, "stack-grace", 16082, 18082, database_url=stack.env["DATABASE_URL"], SHARED_PAGE_SECONDS="3"
    )


@pytest.fixture(scope="module")
def short_session_stack(request):
    """A stack with a database of its own, whose sessions (so carts and cart hints) live 15 s and
    whose hints are checked 6 s after they are set: session expiry and `clearcarts` within a test.
    Its own database, because `clearcarts` there removes every cart untouched for 15 s."""
    return _shared_stack(
        request, "stack-short-session", 16083, 18083, SESSION_COOKIE_AGE="15", PAGECACHE_HINT_REFRESH_SECONDS="6"
    )


@pytest.fixture(scope="session")
def catalog(stack):
    """The in-stock products of the main stack, handed out so that no two tests share one."""
    return Catalog(stack)


# ------------------------------------------------------------------------------------------------
# Starting and stopping
# ------------------------------------------------------------------------------------------------


def _shared_stack(request, name, varnish_port, nginx_port, database_url=None, **settings):
    stack = _start_stack(name, varnish_port, nginx_port, database_url, settings)
    request.addfinalizer(lambda: stop_and_keep_logs(request.session, name, stack))
    return stack


def _start_stack(name, varnish_port, nginx_port, database_url, settings):
    """Start a stack on `database_url`, or on a database of its own that it prepares and seeds."""
    run_dir = Path(tempfile.mkdtemp(prefix=f"shop-{name}-"))
    # varnishd compiles the VCL as its unprivileged user, who must reach the rendered files.
    run_dir.chmod(0o755)
    env = {
        "SHOP_DEMO": "1",
        "DATABASE_URL": database_url or _fresh_database(run_dir, f"shop_{name}".replace("-", "_")),
        # A replica of the developer's database is not a replica of this one.
        "DATABASE_REPLICA_URL": "",
        "DJANGO_SUPERUSER_USERNAME": ADMIN_USERNAME,
        "DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD,
        "DJANGO_SUPERUSER_EMAIL": "stack-admin@example.com",
        **settings,
    }
    if database_url:
        # Entries of its own in that database's cache table: pages rendered with another TTL
        # must not be served here, nor these there. (Not the caller's CACHE_URL with a prefix:
        # django-environ drops the key_prefix of a redis:// URL.)
        env["CACHE_URL"] = f"dbcache://{django_settings.CACHE_TABLE}?key_prefix={name}"
    stack = Stack(ROOT, run_dir=run_dir, varnish_port=varnish_port, nginx_port=nginx_port, processes=2, env=env)
    prepared = None
    try:
        if database_url is None:
            began = time.monotonic()
            _prepare_database(stack)
            prepared = time.monotonic() - began
        stack.start(manage=False)
    except BaseException:
        stack.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    TIMINGS[name] = (prepared, stack.started_in)
    return stack


def _prepare_database(stack):
    """Migrate, collect the static files, seed the demo catalog, add the admin user, empty the cache."""
    # Before the servers start, so no page is ever cached from an empty catalog.
    stack.prepare_django()
    steps = [("seed_demo", "--products", str(DEMO_PRODUCTS), "-v0"), ("createsuperuser", "--noinput")]
    if "CACHE_URL" in stack.environ():
        # A cache server outlives the stack: without this, it would serve the pages of an
        # earlier run, rendered from another database (a price the admin test changed, say).
        steps.append(("shell", "-c", "from django.core.cache import cache; cache.clear()"))
    # All at once: each process spends most of its second importing Django.
    with ThreadPoolExecutor(len(steps)) as pool:
        for done in [pool.submit(stack.manage, *step) for step in steps]:
            done.result()


def stop_and_keep_logs(session, name, stack):
    """Stop a stack by PID; after a failed test keep its logs in test-artifacts/, then clean up."""
    try:
        stack.stop()
    finally:
        if session.testsfailed:
            # The servers' own account of what went wrong, next to the browser screenshots.
            shutil.copytree(stack.log_dir, ARTIFACTS / f"{name}-logs", dirs_exist_ok=True)
        shutil.rmtree(stack.run_dir, ignore_errors=True)


def _fresh_database(run_dir, name):
    """Return the DATABASE_URL of an empty database for this stack.

    On the MySQL/MariaDB server of DATABASE_URL: database `name`, dropped and created anew.
    Otherwise: a SQLite file in the run folder, gone with it.
    """
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("mysql://"):
        return f"sqlite:///{run_dir / 'db.sqlite3'}"
    import MySQLdb

    parts = urlsplit(url)
    connection = MySQLdb.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=unquote(parts.username or "root"),
        password=unquote(parts.password or ""),
    )
    try:
        cursor = connection.cursor()
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    finally:
        connection.close()
    return urlunsplit(parts._replace(path=f"/{name}"))


# ------------------------------------------------------------------------------------------------
# Helpers for the tests
# ------------------------------------------------------------------------------------------------


def http_session():
    """Return a requests session that talks to loopback directly, whatever http_proxy says."""
    session = requests.Session()
    session.trust_env = False
    return session


def varnish_hit(http, url):
    """GET `url`; return the response if Varnish answered it from its cache, else None."""
    response = http.get(url, timeout=10)
    return response if response.headers.get("X-Cache") == "HIT" else None


def wait_until(check, timeout, what, step=0.2):
    """Call `check` until it returns something truthy; return that, or fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(step)


def wait_until_healthy(stack, timeout=30):
    """Wait until /healthz answers 200 through Varnish: uWSGI is up and Varnish's probe says so."""
    http = http_session()

    def healthy():
        try:
            return http.get(stack.url("/healthz"), timeout=5).status_code == 200
        except requests.RequestException:
            return False

    wait_until(healthy, timeout, "the stack answering /healthz through Varnish")


class BackgroundLoad:
    """Threads that send requests until the `with` block ends: `with SomeLoad(...) as load:`.

    A subclass passes what each thread runs, as (function, args) pairs, and says how many requests
    (`first`, counted by `sent()`) must be recorded before the block starts.
    """

    first, first_within, join_within = 10, 5, 15

    def __init__(self, targets):
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=run, args=args, daemon=True) for run, args in targets]

    def sent(self):
        raise NotImplementedError

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        wait_until(lambda: self.sent() >= self.first, self.first_within, "the load's first requests", step=0.05)
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.join_within)


def stylesheet_path(stack):
    """Return the path of the hashed store.css, as the home page links it."""
    home = http_session().get(stack.nginx_url + "/").text
    match = re.search(r'href="(/static/shop/store\.[0-9a-f]{12}\.css)"', home)
    assert match, "the home page links no hashed store.css"
    return match.group(1)


def backend_health(stack):
    """Return what Varnish's probe thinks of Nginx: "healthy" or "sick"."""
    listing = stack.varnishadm("backend.list")
    # Backend name   Admin    Probe    Health     Last change
    # boot.nginx     probe    4/5      healthy    Sat, 28 Nov 2026 13:40:55 GMT
    match = re.search(r"^\S+\.nginx\s+\S+\s+\S+\s+(healthy|sick)\b", listing, re.MULTILINE)
    assert match, f"no nginx backend in varnishadm backend.list:\n{listing}"
    return match.group(1)


@dataclass(frozen=True)
class Product:
    pk: int
    slug: str
    name: str
    price: str
    category: str

    @property
    def path(self):
        return f"/products/{self.slug}/"


class Catalog:
    """Hand out products no other test has asked for, so their pages start uncached."""

    _LIST_PRODUCTS = (
        "import json\n"
        "from shop.models import Product\n"
        "rows = Product.objects.active().filter(stock__gt=0).order_by('pk')\n"
        "print(json.dumps([[p.pk, p.slug, p.name, str(p.price), p.category.slug]"
        " for p in rows.select_related('category')]))\n"
    )

    def __init__(self, stack):
        output = stack.manage("shell", "-c", self._LIST_PRODUCTS)
        self._unused = [Product(*row) for row in json.loads(output.strip().splitlines()[-1])]

    def set_aside(self, paths):
        """Hand the products at these paths to no test: something else has cached their pages."""
        self._unused = [product for product in self._unused if product.path not in paths]

    def fresh(self, count=1):
        """Return `count` products that no test has used yet."""
        assert len(self._unused) >= count, "the demo catalog ran out of unused products"
        taken, self._unused = self._unused[:count], self._unused[count:]
        return taken


# ------------------------------------------------------------------------------------------------
# Forms, as a browser submits them
# ------------------------------------------------------------------------------------------------


class _FormFields(HTMLParser):
    """Collect what a browser would submit from the form with `form_id` (no files, no buttons)."""

    def __init__(self, form_id):
        super().__init__()
        self.form_id, self.inside, self.fields = form_id, False, {}
        self._select = self._textarea = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.inside = attrs.get("id") == self.form_id
        if not self.inside or "name" not in attrs and tag != "option":
            return
        kind = attrs.get("type", "text")
        if tag == "input" and kind not in ("submit", "file", "button", "image", "reset"):
            if kind not in ("checkbox", "radio"):
                self.fields[attrs["name"]] = attrs.get("value", "")
            elif "checked" in attrs:
                self.fields[attrs["name"]] = attrs.get("value", "on")
        elif tag == "select":
            self._select = attrs["name"]
        elif tag == "option" and self._select and "selected" in attrs:
            self.fields[self._select] = attrs["value"]
        elif tag == "textarea":
            self._textarea = attrs["name"]
            self.fields[self._textarea] = ""

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea:
            # HTML drops the newline right after <textarea>; Django's widget writes one.
            value = self.fields[self._textarea]
            self.fields[self._textarea] = value[1:] if value.startswith("\n") else value
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.fields[self._textarea] += data


def form_fields(html, form_id):
    """Return the fields a browser would submit from the form with this id (for admin posts)."""
    parser = _FormFields(form_id)
    parser.feed(html)
    assert parser.fields, f"no form #{form_id} in the page"
    return parser.fields
