"""One decorator per cache class; each view declares exactly one (`cache_audit` lists the rest).

    @shared_page     the same for every visitor: cached by Django and the edge (policy.py)
    @private_page    per visitor: never stored by anyone, varies on Cookie
    @health_check    liveness for probes and load balancers: never stored

`not_found_page(response)` gives a 404 the brief shared lifetime that keeps floods of bad URLs
off Django.
"""

from functools import partial, wraps

from django.utils.cache import add_never_cache_headers, patch_cache_control, patch_vary_headers

from pagecache.conf import render_hook, setting
from pagecache.policy import SharedPage

SHARED = "shared"
PRIVATE = "private"
HEALTH = "health"

# Set on a request by SharedPageMiddleware when it serves the page itself (hit, lock, store), so
# the decorator below it only renders: one layer caches each request, never two.
SERVED_BY_MIDDLEWARE = "_pagecache_served_by_middleware"


def shared_page(view=None, *, query=(), last_modified=None, group=None):
    """Cache a page that is the same for every visitor.

    `query` names the GET parameters the view reads (all others are ignored for the key).
    `last_modified(request, *args, **kwargs)` returns the newest change of what the page shows,
    so a conditional GET is answered 304 without rendering. `group` names a set of pages that
    `invalidation.drop_group` drops at once (for pages whose URLs cannot be listed, like search).

    On its own the decorator serves hits, renders misses and stores them. Under
    `SharedPageMiddleware` the middleware does that (so its copy carries every header of the
    chain) and the decorator only renders.
    """

    def decorator(view_func):
        page = SharedPage(query, group, last_modified)

        @wraps(view_func)
        def wrapper(request, *args, **kwargs):
            if request.method not in ("GET", "HEAD"):
                return render_hook()(view_func, request, *args, **kwargs)
            if getattr(request, SERVED_BY_MIDDLEWARE, False):
                return page.render(request, view_func, args, kwargs)
            return page.serve(request, partial(page.render, request, view_func, args, kwargs))

        wrapper.cache_class = SHARED
        wrapper.shared_page = page
        return wrapper

    return decorator(view) if view is not None else decorator


def private_page(view):
    """Mark a per-visitor view: never stored by browsers or shared caches, varies on Cookie."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        return mark_private(view(request, *args, **kwargs))

    wrapper.cache_class = PRIVATE
    return wrapper


def mark_private(response):
    """Add the private class's headers to a response (also for answers made outside a view)."""
    add_never_cache_headers(response)
    patch_vary_headers(response, ("Cookie",))
    return response


def health_check(view):
    """Mark a liveness view: answered fresh every time, for probes and load balancers."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        patch_cache_control(response, no_store=True)
        return response

    wrapper.cache_class = HEALTH
    return wrapper


def not_found_page(response):
    """Let shared caches keep a 404 for NOT_FOUND_CACHE_SECONDS, and browsers not at all."""
    patch_cache_control(response, public=True, max_age=0, s_maxage=setting("NOT_FOUND_CACHE_SECONDS"))
    return response
