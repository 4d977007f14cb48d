"""SharedPageMiddleware: fresh shared pages answered before the rest of the middleware runs.

Django's own cache middleware serves a hit from the bottom of the middleware list, so every hit
still pays for the session, CSRF, auth and messages layers. A shared page needs none of them
(that is what makes it shared), so this middleware sits right after SecurityMiddleware (whose
redirect to HTTPS and headers must still apply to every answer) and answers a fresh hit with one
cache read. On a miss it takes the page's lock, lets the rest of the chain render the page and
stores the answer on the way out, so the stored copy carries the headers the layers below added
(CSP, X-Frame-Options).

A hit does little else, as every microsecond of it is a share of the answer: the two questions it
asks of each request whose answer depends only on a string of it, "which shared view serves this
path?" and "is this Host allowed?", are answered by Django (`resolve()`, `HttpRequest.get_host()`)
once per distinct string and remembered, in bounded LRU caches that start afresh whenever the
URLconf or the host settings change.

The handshake with the decorator is one flag: the middleware sets `SERVED_BY_MIDDLEWARE` on the
request it serves, and `@shared_page` then only renders. Requests the middleware leaves alone (not
a shared URL, a Host not allowed) go down unmarked, and the decorator caches them by itself.
"""

from functools import lru_cache, partial

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest
from django.urls import Resolver404, get_resolver, get_urlconf

from pagecache.decorators import SERVED_BY_MIDDLEWARE
from pagecache.timing import add_server_timing, measured

# How many distinct paths and Host values are remembered. A path or Host seen once more than that
# since its last use is looked up again: a flood of made-up URLs costs their own lookups, no memory.
REMEMBERED_PATHS = 4096
REMEMBERED_HOSTS = 64


class SharedPageMiddleware:
    """Serve shared pages right after SecurityMiddleware; time every other answer."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        page = _shared_page(request)
        if page is None or not _host_allowed(request):
            # A Host not in ALLOWED_HOSTS goes on down: CommonMiddleware answers it 400, with
            # the headers of the middleware in between (CSP, X-Frame-Options) on the answer.
            with measured() as measure:
                response = self.get_response(request)
            return add_server_timing(response, measure=measure)
        setattr(request, SERVED_BY_MIDDLEWARE, True)
        render = partial(self.get_response, request)  # the rest of the chain, down to the view
        return page.serve(request, render)


def _shared_page(request):
    """Return the SharedPage of the shared view this GET or HEAD goes to, else None."""
    if request.method not in ("GET", "HEAD"):
        return None
    # The resolver of this request's URLconf, as resolve() picks it. get_resolver() is Django's own
    # cache, emptied when ROOT_URLCONF changes, so a new URLconf is a new key here too.
    urlconf = getattr(request, "urlconf", None) or get_urlconf()
    return _shared_page_at(get_resolver(urlconf), request.path_info)


@lru_cache(maxsize=REMEMBERED_PATHS)
def _shared_page_at(resolver, path):
    """Resolve `path` once: the `shared_page` its view carries, or None (other views, 404s)."""
    try:
        match = resolver.resolve(path)
    except Resolver404:
        return None
    return getattr(match.func, "shared_page", None)


def _host_allowed(request):
    """Check the Host as CommonMiddleware would: hits never reach it."""
    host = request.META.get("HTTP_HOST")
    if host is None or settings.USE_X_FORWARDED_HOST:
        return _get_host_succeeds(request)  # rarer: the raw Host comes from elsewhere
    return _host_header_allowed(host, tuple(settings.ALLOWED_HOSTS), settings.DEBUG)


@lru_cache(maxsize=REMEMBERED_HOSTS)
def _host_header_allowed(host, allowed_hosts, debug):
    """Tell whether Django accepts this Host header under these settings (they are in the key)."""
    probe = HttpRequest()
    probe.META["HTTP_HOST"] = host
    return _get_host_succeeds(probe)


def _get_host_succeeds(request):
    try:
        request.get_host()
    except DisallowedHost:
        return False
    return True
