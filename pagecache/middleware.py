"""SharedPageMiddleware: fresh shared pages answered before the rest of the middleware runs.

Django's own cache middleware serves a hit from the bottom of the middleware list, so every hit
still pays for the session, CSRF, auth and messages layers. A shared page needs none of them
(that is what makes it shared), so this middleware sits right after SecurityMiddleware (whose
redirect to HTTPS and headers must still apply to every answer) and answers a fresh hit with one
cache read. On a miss it takes the page's lock, lets the rest of the chain render the page and
stores the answer on the way out, so the stored copy carries the headers the layers below added
(CSP, X-Frame-Options).

The handshake with the decorator is one flag: the middleware sets `SERVED_BY_MIDDLEWARE` on the
request it serves, and `@shared_page` then only renders. Requests the middleware leaves alone (not
a shared URL, a Host not allowed) go down unmarked, and the decorator caches them by itself.
"""

from functools import partial

from django.core.exceptions import DisallowedHost
from django.urls import Resolver404, resolve

from pagecache.decorators import SERVED_BY_MIDDLEWARE
from pagecache.timing import add_server_timing, measured


class SharedPageMiddleware:
    """Serve shared pages right after SecurityMiddleware; time every other answer."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        match = _shared_match(request)
        if match is None or not _host_allowed(request):
            # A Host not in ALLOWED_HOSTS goes on down: CommonMiddleware answers it 400, with
            # the headers of the middleware in between (CSP, X-Frame-Options) on the answer.
            with measured() as measure:
                response = self.get_response(request)
            return add_server_timing(response, measure=measure)
        setattr(request, SERVED_BY_MIDDLEWARE, True)
        render = partial(self.get_response, request)  # the rest of the chain, down to the view
        return match.func.shared_page.serve(request, render)


def _host_allowed(request):
    """Check the Host as CommonMiddleware would: hits never reach it."""
    try:
        request.get_host()
    except DisallowedHost:
        return False
    return True


def _shared_match(request):
    """Return the resolver match of the shared view this GET or HEAD goes to, else None."""
    if request.method not in ("GET", "HEAD"):
        return None
    try:
        match = resolve(request.path_info, getattr(request, "urlconf", None))
    except Resolver404:
        return None
    return match if hasattr(match.func, "shared_page") else None
