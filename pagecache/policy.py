"""The rules of a shared page: answer a fresh copy, a 304, or one render per expiry, and store it.

`SharedPage` is what `@shared_page` attaches to a view (as `view.shared_page`). Both adaptors use
it: the decorator, with the view as the render, and `SharedPageMiddleware`, with the rest of the
middleware chain as the render, so the stored copy carries every header that chain adds.
"""

import logging
import time

from django.utils.cache import (
    add_never_cache_headers,
    get_conditional_response,
    patch_cache_control,
    patch_vary_headers,
)
from django.utils.http import http_date

from pagecache import store
from pagecache.conf import render_hook, setting
from pagecache.guard import refuse, visitor_state_touched
from pagecache.keys import accepted_encoding, canonical_query, page_key
from pagecache.timing import add_server_timing, measured

logger = logging.getLogger(__name__)

# How long (seconds) a request with nothing to serve waits for another request's render of the
# same page before rendering it itself, and how often it looks.
WAIT_SECONDS = 5.0
WAIT_STEP = 0.02


class SharedPage:
    """How one shared view's pages are keyed, validated and grouped."""

    def __init__(self, query=(), group=None, last_modified=None):
        self.query = tuple(query)
        self.group = group
        self.last_modified = last_modified

    def key(self, request):
        """Return the page's key prefix and the encoding the client takes."""
        # Most hits have no query string, or the view reads none of it: no QueryDict to parse.
        read = self.query and request.META.get("QUERY_STRING")
        query = canonical_query(request.GET, self.query) if read else ""
        return page_key(request.path, query), accepted_encoding(request.META.get("HTTP_ACCEPT_ENCODING", ""))

    def key_of_url(self, path, query):
        """Return the key prefix of a page given as a path and a QueryDict (for dropping it)."""
        return page_key(path, canonical_query(query, self.query))

    def serve(self, request, render):
        """Answer a GET or HEAD of this page: from the cache, or by calling `render()` once per expiry."""
        base, encoding = self.key(request)
        at = store.now()
        entry = store.read_entry(base, encoding, self.group)
        if is_fresh(entry, at):
            return _answer(request, entry, at, "HIT")
        if not store.take_lock(base):
            # Another request is rendering this page: serve the expired copy meanwhile, or
            # wait for the fresh one, instead of rendering it once more.
            if entry is not None:
                return _answer(request, entry, at, "STALE")
            fresh = _wait_for_entry(base, encoding, self.group, newer_than=at - 1)
            return _answer(request, fresh, store.now(), "HIT") if fresh else _rendered(render, "UNCACHED")
        try:
            # Another request may have stored the page between our read and our lock.
            entry = store.read_entry(base, encoding, self.group)
            if is_fresh(entry, store.now()):
                return _answer(request, entry, store.now(), "HIT")
            generation = store.generation(self.group)
            with measured() as measure:
                response = render()
            return self._store(request, response, base, encoding, generation, measure)
        finally:
            store.release_lock(base)

    def render(self, request, view, args, kwargs):
        """Call the view through PAGECACHE_RENDER, or answer 304 if the client's copy is current.

        This runs in the view layer (below every middleware, under the lock), so an error in
        `last_modified` is handled like an error in the view.
        """
        hook = render_hook()
        modified = hook(self.last_modified, request, *args, **kwargs) if self.last_modified else None
        if modified is not None:
            not_modified = get_conditional_response(request, last_modified=int(modified.timestamp()))
            if not_modified is not None:
                mark_shared(not_modified, modified.timestamp())
                return not_modified
        response = hook(view, request, *args, **kwargs)
        if modified is not None:
            response["Last-Modified"] = http_date(modified.timestamp())
        return response

    def _store(self, request, response, base, encoding, generation, measure):
        """Store a fresh render (both encodings) and answer it in the client's encoding."""
        if response.status_code != 200 or response.streaming or declines_sharing(response):
            return add_server_timing(response, "UNCACHED", measure)
        touched = visitor_state_touched(request, response)
        if touched:
            refuse(request, response, touched)
            add_never_cache_headers(response)
            return add_server_timing(response, "UNCACHED", measure)
        mark_shared(response)
        stored_at = store.now()
        entries = store.entries_from(response, stored_at, generation)
        store.store_entries(base, entries, setting("SHARED_PAGE_SECONDS") + setting("STALE_CACHE_SECONDS"))
        return _answer(request, entries[encoding], stored_at, "MISS", measure)


def is_fresh(entry, at):
    """Tell whether a stored page is younger than the TTL."""
    return entry is not None and at < entry["stored_at"] + setting("SHARED_PAGE_SECONDS")


def mark_shared(response, last_modified=None):
    """Mark a response as shareable: by browsers briefly, by shared caches for the TTL.

    Cache-Control speaks to every cache, stale windows included, so a CDN or proxy in front
    behaves like the shipped Varnish. Surrogate-Control is the edge's own copy of the lifetime
    (the Edge Architecture header Varnish and most CDNs consume and remove): the shipped VCL
    reads it, so the edge's lifetime can differ from other caches' without touching theirs.
    """
    ttl = setting("SHARED_PAGE_SECONDS")
    stale = {
        "stale_while_revalidate": setting("STALE_WHILE_REVALIDATE_SECONDS"),
        "stale_if_error": setting("STALE_IF_ERROR_SECONDS"),
    }
    browser = min(setting("BROWSER_CACHE_SECONDS"), ttl)
    patch_cache_control(response, public=True, max_age=browser, s_maxage=ttl, **stale)
    response["Surrogate-Control"] = ", ".join(
        [f"max-age={ttl}"] + [f"{name.replace('_', '-')}={value}" for name, value in stale.items()]
    )
    patch_vary_headers(response, ("Accept-Encoding",))
    if last_modified is not None:
        response["Last-Modified"] = http_date(last_modified)


def declines_sharing(response):
    """Tell whether the view itself said its answer must not be shared.

    The same rules Django's cache middleware follows: `private`, `no-store` or `no-cache` in any
    letter case, or `Vary: *` (the answer depends on something no key can hold).
    """
    control = response.get("Cache-Control", "").lower()
    directives = {part.split("=")[0].strip() for part in control.split(",")}
    vary = {part.strip() for part in response.get("Vary", "").split(",")}
    return bool(directives & {"private", "no-store", "no-cache"}) or "*" in vary


def _answer(request, entry, at, outcome, measure=None):
    """Answer a stored copy, saying how it was served (X-Django-Cache, Server-Timing)."""
    return add_server_timing(store.response_from(request, entry, at, outcome), outcome, measure)


def _rendered(render, outcome):
    """Render without storing, measured."""
    with measured() as measure:
        response = render()
    return add_server_timing(response, outcome, measure)


def _wait_for_entry(base, encoding, group, newer_than):
    """Wait for another request's render of this page; None if it takes too long."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(WAIT_STEP)
        entry = store.read_entry(base, encoding, group)
        if entry is not None and entry["stored_at"] >= newer_than:
            return entry
    return None
