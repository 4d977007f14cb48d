"""System checks for the misconfigurations that silently stop caching (`manage.py check`).

Each of these leaves the site working, only slower or leakier: pages that are never stored, hits
that pay for the whole middleware chain, purges that reach one process. Nothing fails loudly, so
`check` is where they show.

    E001  SharedPageMiddleware below the session, CSRF or auth middleware
    W001  SharedPageMiddleware not right after SecurityMiddleware
    I001  no SharedPageMiddleware while @shared_page views exist (the decorator caches alone)
    W002  the database cache's table is missing (only with `check --database ALIAS`)
    W003  the cache's MAX_ENTRIES is too small for the shared pages
    W004  an in-process (locmem) cache with DEBUG off
    E002  a *_SECONDS setting that is not an integer of 0 or more
    E003  a VARNISH_URL entry that is not an http(s) URL
    E004  VARNISH_PURGE_TIMEOUT not a positive number
    E005  PAGECACHE_RENDER not an importable callable
    E006  PAGECACHE_AUDIT_PATHS or PAGECACHE_JSON_PATHS not a list of paths
    W005  the CSRF cookie is HttpOnly or in the session: a script cannot read it
    I002  CSRF_FAILURE_VIEW is not pagecache.csrf.csrf_failure
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.db import BaseDatabaseCache
from django.core.cache.backends.filebased import FileBasedCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.checks import Error, Info, Tags, Warning, register
from django.db import DatabaseError, connections, router

from pagecache.conf import render_hook, setting, varnish_urls

SECURITY = "django.middleware.security.SecurityMiddleware"
SHARED = "pagecache.middleware.SharedPageMiddleware"
# A hit must be answered before these run: they read the session or the CSRF cookie.
SESSION_LAYERS = (
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
)
SECONDS_SETTINGS = ("SHARED_PAGE_SECONDS", "BROWSER_CACHE_SECONDS", "STALE_CACHE_SECONDS", "NOT_FOUND_CACHE_SECONDS")
# Each shared URL takes three entries: its identity and gzip copies, and a lock while it renders.
ENTRIES_PER_PAGE = 3
# The fewest shared URLs a cache should hold before it starts culling: a catalog of a few hundred
# products, its categories and their pages. Django's default MAX_ENTRIES (300) holds 100.
MIN_PAGES = 1000
CSRF_VIEW = "pagecache.csrf.csrf_failure"


@register(Tags.caches)
def check_middleware_order(app_configs=None, **kwargs):
    """Report a SharedPageMiddleware placed where its hits pay for (or skip) other layers."""
    middleware = list(settings.MIDDLEWARE)
    if SHARED not in middleware:
        return _missing_middleware()
    before = middleware[: middleware.index(SHARED)]
    above = [name for name in before if name in SESSION_LAYERS]
    if above:
        return [
            Error(
                f"{SHARED} comes after {', '.join(above)}.",
                hint="Put it right after SecurityMiddleware, above the session, CSRF and auth layers: a cached "
                "page is the same for every visitor, so its hit must be answered before they run.",
                id="pagecache.E001",
            )
        ]
    expected = [SECURITY] if SECURITY in middleware else []
    if before != expected:
        where = f"after {before[-1]}" if before else f"before {SECURITY}"
        return [
            Warning(
                f"{SHARED} is not right after {SECURITY} (it comes {where}).",
                hint="Between the two, a middleware runs on every hit (or, above SecurityMiddleware, hits skip its "
                "HTTPS redirect and headers). Put SharedPageMiddleware right after SecurityMiddleware.",
                id="pagecache.W001",
            )
        ]
    return []


def _missing_middleware():
    """Say that hits pay for the whole chain, if any view is shared (the decorator works alone)."""
    try:
        from pagecache.audit import url_patterns
        from pagecache.decorators import SHARED as SHARED_CLASS

        shared = any(pattern.cache_class == SHARED_CLASS for pattern in url_patterns())
    except Exception:  # a broken URLconf is Django's own check (urls.E*) to report
        return []
    if not shared:
        return []
    return [
        Info(
            f"{SHARED} is not in MIDDLEWARE: @shared_page caches by itself, but each hit runs every middleware.",
            hint=f"Add it right after {SECURITY} so hits are answered with one cache read.",
            id="pagecache.I001",
        )
    ]


@register(Tags.caches, Tags.database)
def check_cache_table(app_configs=None, databases=None, **kwargs):
    """Report a database cache whose table is missing; touches the database only when asked to."""
    # Like Django's database checks: `manage.py check` passes no databases and never connects;
    # `check --database default` (and `migrate`) pass them. A Warning, not an Error: `migrate` runs
    # this before `createcachetable` can, and an Error would stop it on a fresh database.
    cache = caches[DEFAULT_CACHE_ALIAS]
    if not databases or not isinstance(cache, BaseDatabaseCache):
        return []
    alias = router.db_for_write(cache.cache_model_class)
    if alias not in databases:
        return []
    try:
        with connections[alias].cursor() as cursor:
            tables = connections[alias].introspection.table_names(cursor)
    except DatabaseError:
        return []  # an unreachable database is reported by Django's own checks and commands
    # A database without Django's migration table is a new one that `migrate` is about to fill
    # (and `createcachetable` after it): not worth a warning on every first deploy.
    if cache._table in tables or "django_migrations" not in tables:
        return []
    return [
        Warning(
            f"The cache table {cache._table!r} does not exist in the database {alias!r}.",
            hint="Run `manage.py createcachetable`. Until then every cache read fails (logged as 'cache "
            "unavailable') and no page is cached.",
            id="pagecache.W002",
        )
    ]


@register(Tags.caches)
def check_cache_size(app_configs=None, **kwargs):
    """Report a culling cache (database, locmem, file) too small to hold the shared pages."""
    cache = caches[DEFAULT_CACHE_ALIAS]
    if not isinstance(cache, (BaseDatabaseCache, LocMemCache, FileBasedCache)):
        return []  # Redis and memcached ignore MAX_ENTRIES: their memory limit is the server's
    floor = ENTRIES_PER_PAGE * MIN_PAGES
    if cache._max_entries >= floor:
        return []
    return [
        Warning(
            f"The default cache keeps at most {cache._max_entries} entries (OPTIONS MAX_ENTRIES).",
            hint=f"Each shared URL takes {ENTRIES_PER_PAGE} entries (identity and gzip copies, a lock), so this holds "
            f"{cache._max_entries // ENTRIES_PER_PAGE} pages before the cache culls a share of them. Set MAX_ENTRIES "
            f"to {ENTRIES_PER_PAGE} x the shared URLs you serve, at least {floor} ({MIN_PAGES} pages).",
            id="pagecache.W003",
        )
    ]


@register(Tags.caches)
def check_process_local_cache(app_configs=None, **kwargs):
    """Report an in-process cache outside development: a purge reaches one process of many."""
    if settings.DEBUG or not isinstance(caches[DEFAULT_CACHE_ALIAS], LocMemCache):
        return []
    return [
        Warning(
            "The default cache is LocMemCache: each worker process keeps its own copy of every page.",
            hint="A change is purged in the process that made it only; the others serve the old page for up to "
            "SHARED_PAGE_SECONDS. Fine with one process (this check cannot count them); otherwise use the "
            "database cache, Redis or memcached.",
            id="pagecache.W004",
        )
    ]


@register(Tags.caches)
def check_settings(app_configs=None, **kwargs):
    """Report page-cache settings of the wrong type or value."""
    return _seconds_errors() + _varnish_errors() + _render_errors() + _path_list_errors()


def _is_number(value):
    """Tell whether a value is an int or a float (a bool is neither here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _seconds_errors():
    """Report each *_SECONDS setting that is not an integer of 0 or more."""
    errors = []
    for name in SECONDS_SETTINGS:
        value = setting(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            errors.append(
                Error(
                    f"{name} must be an integer of 0 or more, not {value!r}.",
                    hint="A number of seconds: it ends up in Cache-Control, which takes whole seconds.",
                    id="pagecache.E002",
                )
            )
    return errors


def _varnish_errors():
    """Report edges that are not http(s) URLs and a timeout that is not a positive number."""
    errors = []
    value = setting("VARNISH_URL")
    try:
        urls = varnish_urls()
    except (AttributeError, TypeError):  # not a string nor a list of strings
        urls = list(value) if isinstance(value, (list, tuple)) else [value]
    for url in urls:
        parts = urlsplit(str(url))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            errors.append(
                Error(
                    f"VARNISH_URL entry {url!r} is not an http(s) URL.",
                    hint="Give each edge as a base URL such as 'http://127.0.0.1:6081' (a list, or one "
                    "comma-separated string); bans to it fail otherwise.",
                    id="pagecache.E003",
                )
            )
    timeout = setting("VARNISH_PURGE_TIMEOUT")
    if not _is_number(timeout) or timeout <= 0:
        errors.append(
            Error(
                f"VARNISH_PURGE_TIMEOUT must be a positive number of seconds, not {timeout!r}.",
                hint="How long to wait for one edge to answer a BAN, e.g. 2.0.",
                id="pagecache.E004",
            )
        )
    return errors


def _render_errors():
    """Report a PAGECACHE_RENDER that cannot be imported or called."""
    try:
        hook = render_hook()
    except ImportError as exc:
        problem = f"cannot be imported ({exc})"
    else:
        if callable(hook):
            return []
        problem = "is not callable"
    return [
        Error(
            f"PAGECACHE_RENDER {setting('PAGECACHE_RENDER')!r} {problem}.",
            hint="A dotted path to a callable render(func, request, *args, **kwargs), or None. Every shared "
            "page goes through it, so each one would fail.",
            id="pagecache.E005",
        )
    ]


def _path_list_errors():
    """Report path-list settings that are not lists of paths."""
    errors = []
    for name in ("PAGECACHE_AUDIT_PATHS", "PAGECACHE_JSON_PATHS"):
        value = setting(name)
        if (
            isinstance(value, str)
            or not isinstance(value, (list, tuple))
            or not all(isinstance(path, str) and path.startswith("/") for path in value)
        ):
            errors.append(
                Error(
                    f"{name} must be a list of paths starting with '/', not {value!r}.",
                    hint="For example ['/products/blue-mug/'] (a string alone would be read letter by letter).",
                    id="pagecache.E006",
                )
            )
    return errors


@register(Tags.security)
def check_csrf_cookie(app_configs=None, **kwargs):
    """Report a CSRF setup in which the Ajax kit's script cannot send the token."""
    messages = []
    # Shared pages carry no token (it is per visitor): the script reads it from the cookie.
    if settings.CSRF_COOKIE_HTTPONLY or settings.CSRF_USE_SESSIONS:
        name = "CSRF_COOKIE_HTTPONLY" if settings.CSRF_COOKIE_HTTPONLY else "CSRF_USE_SESSIONS"
        messages.append(
            Warning(
                f"{name} is True: scripts cannot read the CSRF token from the csrftoken cookie.",
                hint="Shared pages carry no token, so the Ajax kit reads the cookie and sends it in X-CSRFToken; "
                "every POST from a shared page then fails. Set CSRF_COOKIE_HTTPONLY and CSRF_USE_SESSIONS to False.",
                id="pagecache.W005",
            )
        )
    if settings.CSRF_FAILURE_VIEW != CSRF_VIEW:
        messages.append(
            Info(
                f"CSRF_FAILURE_VIEW is not {CSRF_VIEW!r}.",
                hint="The Ajax kit's API then answers a CSRF failure with an HTML page its script cannot read. "
                "Set it, or silence pagecache.I002 if no script posts to a JSON API.",
                id="pagecache.I002",
            )
        )
    return messages
