"""Every setting of the page cache, its default and its meaning; read through `setting()`.

A project sets only what differs from these defaults. Nothing here is required: without
`VARNISH_URL` no edge is told about changes (the TTL bounds what it keeps), and that is all.
"""

from django.conf import settings
from django.utils.module_loading import import_string

DEFAULTS = {
    # How long (seconds) Django and the edge may serve a shared page. Changes are purged at
    # once, so this only bounds what a purge does not reach.
    "SHARED_PAGE_SECONDS": 60,
    # How long (seconds) a browser may keep a shared page: short, a browser cannot be purged.
    "BROWSER_CACHE_SECONDS": 10,
    # How long (seconds) past its TTL a page is kept, to be served while one request renders
    # it anew (and to requests that wait for that render).
    "STALE_CACHE_SECONDS": 30,
    # What shared caches in front may do with an expired page, in Cache-Control as RFC 5861
    # says: serve it while they fetch a new one, and while the origin fails. The shipped VCL
    # uses the same windows (grace), so any cache in front behaves like it.
    "STALE_WHILE_REVALIDATE_SECONDS": 10,
    "STALE_IF_ERROR_SECONDS": 6 * 60 * 60,  # 6 hours: ride out an outage
    # How long (seconds) the edge may keep a 404 (`not_found_page`): a flood of bad URLs stays
    # cheap, and a page created a moment later shows soon.
    "NOT_FOUND_CACHE_SECONDS": 10,
    # The edges (Varnish) to send BANs to: a list of base URLs, or one comma-separated string.
    # Empty: no bans.
    "VARNISH_URL": [],
    # Seconds to wait for one edge to answer a BAN before giving up (logged, never raised).
    "VARNISH_PURGE_TIMEOUT": 2.0,
    # Dotted path of a callable `render(func, request, *args, **kwargs)` through which shared
    # pages (and their `last_modified`) are computed, e.g. to read from a replica. None: call it.
    "PAGECACHE_RENDER": None,
    # Sample paths for `manage.py cache_audit`, for shared URL patterns that take parameters.
    "PAGECACHE_AUDIT_PATHS": [],
    # Path prefixes whose CSRF failures are answered as JSON by `pagecache.csrf.csrf_failure`.
    "PAGECACHE_JSON_PATHS": ["/api/"],
    # The cookie through which private cart answers tell the kit's script the cart count, so shared
    # pages show it without a request (pagecache/hint.py); the badge snippet passes it to the script.
    "PAGECACHE_HINT_COOKIE": "cart_hint",
    # Seconds after a cart answer when the script checks the hint with one GET of the cart API: the
    # longest the badge lags behind a change this browser did not make (a product withdrawn, a cart
    # removed on the server).
    "PAGECACHE_HINT_REFRESH_SECONDS": 600,
}


def setting(name):
    """Return the project's value of a page-cache setting, or its default."""
    return getattr(settings, name, DEFAULTS[name])


def varnish_urls():
    """Return the edges to ban at, as a list, whatever form the setting has."""
    value = setting("VARNISH_URL") or []
    if isinstance(value, str):
        value = value.split(",")
    return [url.strip() for url in value if url and url.strip()]


def _call(func, *args, **kwargs):
    return func(*args, **kwargs)


def render_hook():
    """Return the callable that computes shared pages (PAGECACHE_RENDER, default: call it)."""
    path = setting("PAGECACHE_RENDER")
    return import_string(path) if path else _call
