"""The cache policy: which pages may be shared, for how long, and how they are dropped on change.

Every view declares one class with one decorator from this module:

    shared   @shared_page      same HTML for everyone; cached here and by Varnish, purged on change
    private  @private_page     per visitor (cart, API); never stored by anyone, varies on Cookie
    health   @health_check     liveness for probes; never stored

Three caches hold a shared page, each bounded by the same TTL so they never stack:

    browser  `max-age=BROWSER_CACHE_SECONDS`  short: a browser cannot be purged
    Varnish  `s-maxage=PRODUCT_CACHE_SECONDS` minus `Age`; BANned when the catalog changes
    Django   this module, in the cache framework (database table, Redis, memcached or locmem)

`shared_page` is built on `django.utils.cache` rather than on `cache_page` because a store needs
what `cache_page` lacks: one cache read per hit (`cache_page` makes two), keys that code can
delete when a product changes, one render per expiry however many requests wait for it (a lock
taken with `cache.add`, stale pages served meanwhile), an `Age` header so Varnish does not add a
second TTL on top, and a gzip variant compressed once per render instead of once per request.

`SharedPageMiddleware` is the fast path in front of the decorator: it answers a fresh hit right
after SecurityMiddleware, so a hit costs one cache read and none of the session, CSRF, auth or
messages layers, and it stores each render with the headers every middleware added to it.
"""

import hashlib
import logging
import re
import threading
import time
import urllib.request
import uuid
from functools import wraps

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import DisallowedHost
from django.http import HttpResponse
from django.urls import Resolver404, resolve
from django.utils.cache import (
    add_never_cache_headers,
    get_conditional_response,
    patch_cache_control,
    patch_vary_headers,
)
from django.utils.http import http_date, parse_http_date_safe
from django.utils.text import compress_string

from shop.replicas import render_from_replica, replica_settle_seconds, wait_for_replica

logger = logging.getLogger(__name__)

SHARED = "shared"
PRIVATE = "private"
HEALTH = "health"

# URL prefixes whose views are not ours to decorate (Django's admin marks its own views
# never_cache); the URL-walking test accepts them as private.
PRIVATE_URL_PREFIXES = ("admin/",)

# The two representations stored per page. The key carries the encoding and the response says
# `Vary: Accept-Encoding`, so the key and the Vary header always agree.
ENCODINGS = ("identity", "gzip")

# How long a render may hold the lock (seconds), and how long a request with nothing to serve
# waits for another request's render before rendering itself.
LOCK_SECONDS = 10
WAIT_SECONDS = 5.0
WAIT_STEP = 0.02

# Pages whose keys cannot be listed (search results) are dropped together by changing the
# generation stored under this key; it is read in the same round trip as the page.
GENERATION_KEY = "page-generation:{}"


def _now():
    """Return the time; tests replace this to move the clock."""
    return time.time()


# ------------------------------------------------------------------------------------------------
# Keys
# ------------------------------------------------------------------------------------------------


def page_key_base(path, query=""):
    """Return the key prefix of the page at `path` with its normalised `query`."""
    digest = hashlib.md5(f"{path}?{query}".encode(), usedforsecurity=False).hexdigest()
    return f"page:{digest}"


def _normalised_query(request, params):
    """Keep only the query parameters the view reads, in a fixed order.

    `?utm_source=x`, `?fbclid=y` or reordered parameters then share one entry, and the code that
    drops a page after a change reaches every copy of it.
    """
    pairs = [(p, request.GET[p]) for p in params if request.GET.get(p)]
    return "&".join(f"{p}={v}" for p, v in pairs)


def _accepted_encoding(request):
    """Return "gzip" if the client takes gzip, else "identity"."""
    accept = request.META.get("HTTP_ACCEPT_ENCODING", "").lower()
    for part in accept.split(","):
        name, _, params = part.strip().partition(";")
        if name.strip() in ("gzip", "*") and params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00"):
            return "gzip"
    return "identity"


# ------------------------------------------------------------------------------------------------
# Cache access that never turns a cache fault into a 500
# ------------------------------------------------------------------------------------------------


def _guarded(default):
    """Log and swallow cache errors: a down cache server means uncached pages, not errors."""

    def decorator(func):
        @wraps(func)
        def wrapper(*args, **kwargs):
            try:
                return func(*args, **kwargs)
            except Exception as exc:  # any backend: DatabaseError, ConnectionError, socket errors
                logger.warning("cache unavailable (%s): %s", func.__name__, exc)
                return default

        return wrapper

    return decorator


@_guarded(default=None)
def _read_entry(base, encoding, group):
    """Read one page variant, and its group's generation, in one round trip."""
    key = f"{base}:{encoding}"
    if group is None:
        return cache.get(key)
    gen_key = GENERATION_KEY.format(group)
    found = cache.get_many([key, gen_key])
    entry = found.get(key)
    if entry is not None and entry.get("generation") != found.get(gen_key):
        return None
    return entry


@_guarded(default=None)
def _store_entries(base, entries, timeout):
    cache.set_many({f"{base}:{enc}": entry for enc, entry in entries.items()}, timeout)


@_guarded(default=None)
def _generation(group):
    return None if group is None else cache.get(GENERATION_KEY.format(group))


@_guarded(default=True)
def _take_lock(base):
    # A fault here answers True: render without the lock rather than wait for a dead cache.
    return cache.add(f"{base}:lock", 1, LOCK_SECONDS)


@_guarded(default=None)
def _release_lock(base):
    cache.delete(f"{base}:lock")


# ------------------------------------------------------------------------------------------------
# Responses
# ------------------------------------------------------------------------------------------------


def _shared_headers(response, last_modified=None):
    """Mark a response as shareable by browsers (briefly) and by Varnish (for the TTL)."""
    patch_cache_control(
        response,
        public=True,
        max_age=min(settings.BROWSER_CACHE_SECONDS, settings.PRODUCT_CACHE_SECONDS),
        s_maxage=settings.PRODUCT_CACHE_SECONDS,
    )
    patch_vary_headers(response, ("Accept-Encoding",))
    if last_modified is not None:
        response["Last-Modified"] = http_date(last_modified)


def _entries_from(response, stored_at, generation):
    """Build the identity and gzip entries of a rendered page."""
    body = response.content
    etag_source = hashlib.md5(body, usedforsecurity=False).hexdigest()
    headers = {k: v for k, v in response.items() if k.lower() not in ("content-length", "age")}
    headers["ETag"] = f'"{etag_source}"'
    entries = {}
    for encoding in ENCODINGS:
        variant = dict(headers)
        content = body
        if encoding == "gzip":
            content = compress_string(body)
            variant["Content-Encoding"] = "gzip"
            # A different representation needs its own validator.
            variant["ETag"] = f'"{etag_source}-gzip"'
        entries[encoding] = {
            "stored_at": stored_at,
            "generation": generation,
            "status": response.status_code,
            "headers": variant,
            "body": content,
        }
    return entries


def _response_from(request, entry, now, outcome):
    """Rebuild a response from a stored entry, with its age, or a 304 if the client has it."""
    response = HttpResponse(entry["body"], status=entry["status"])
    for name, value in entry["headers"].items():
        response[name] = value
    # Served above CommonMiddleware, which would otherwise add it: lets Nginx and Varnish
    # know the length up front instead of reading to the end of the stream.
    response["Content-Length"] = str(len(entry["body"]))
    # The time this copy has already spent in a cache: Varnish and browsers subtract it from
    # s-maxage/max-age, so a page is never kept for more than one TTL in all.
    response["Age"] = str(max(0, int(now - entry["stored_at"])))
    response["X-Django-Cache"] = outcome
    if not _is_conditional(request):
        return response
    last_modified = parse_http_date_safe(entry["headers"].get("Last-Modified", ""))
    return get_conditional_response(
        request, etag=entry["headers"].get("ETag"), last_modified=last_modified, response=response
    )


_CONDITIONS = ("HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE", "HTTP_IF_MATCH", "HTTP_IF_UNMODIFIED_SINCE")


def _is_conditional(request):
    """Tell whether the request has a condition to check (most have none: no dates to parse)."""
    return any(name in request.META for name in _CONDITIONS)


def _touched_visitor_state(request, response):
    """Tell whether rendering read the session, asked for a CSRF token or a CSP nonce, or set a cookie.

    A nonce (django-csp's `request.csp_nonce`) is as per-response as a token: a stored copy would
    hand every visitor the same one, and a nonce known in advance protects nothing.
    """
    session = getattr(request, "session", None)
    return bool(
        (session is not None and session.accessed)
        or request.META.get("CSRF_COOKIE_NEEDS_UPDATE")
        or getattr(request, "_csp_nonce", None)
        or response.cookies
    )


def _declines_sharing(response):
    """Tell whether the view itself said its answer must not be shared.

    The same rules Django's cache middleware follows: `private`, `no-store` or `no-cache` in any
    letter case, or `Vary: *` (the answer depends on something no key can hold).
    """
    control = response.get("Cache-Control", "").lower()
    directives = {part.split("=")[0].strip() for part in control.split(",")}
    vary = {part.strip() for part in response.get("Vary", "").split(",")}
    return bool(directives & {"private", "no-store", "no-cache"}) or "*" in vary


def _wait_for_entry(base, encoding, group, newer_than):
    """Wait for another request's render of this page; None if it takes too long."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(WAIT_STEP)
        entry = _read_entry(base, encoding, group)
        if entry is not None and entry["stored_at"] >= newer_than:
            return entry
    return None


# ------------------------------------------------------------------------------------------------
# The three classes
# ------------------------------------------------------------------------------------------------


def shared_page(view=None, *, query=(), last_modified=None, group=None):
    """Cache a page that is the same for every visitor.

    `query` names the GET parameters the view reads (all others are ignored for the key).
    `last_modified(request, *args, **kwargs)` returns the newest change of what the page shows,
    so a conditional GET is answered 304 without rendering. `group` names a set of pages that
    `drop_group` drops at once (used for search results, whose URLs cannot be listed).

    On its own the decorator serves hits, renders misses and stores them. With
    `SharedPageMiddleware` installed, fresh hits never reach it (the middleware answers them
    before the rest of the middleware runs) and it leaves the storing of a render to the
    middleware, which sees the response with every other middleware's headers on it.
    """

    def decorator(view_func):
        @wraps(view_func)
        def wrapper(request, *args, **kwargs):
            if request.method not in ("GET", "HEAD"):
                return view_func(request, *args, **kwargs)
            base, encoding = wrapper.shared_page.key(request)
            now = _now()
            entry = _read_entry(base, encoding, group)
            if _is_fresh(entry, now):
                return _response_from(request, entry, now, "HIT")

            modified = render_from_replica(last_modified, request, *args, **kwargs) if last_modified else None
            if modified is not None:
                not_modified = get_conditional_response(request, last_modified=int(modified.timestamp()))
                if not_modified is not None:
                    _shared_headers(not_modified, modified.timestamp())
                    return not_modified

            if not _take_lock(base):
                # Another request is rendering this page: serve the expired copy meanwhile, or
                # wait for the fresh one, instead of rendering it once more.
                if entry is not None:
                    return _response_from(request, entry, now, "STALE")
                fresh = _wait_for_entry(base, encoding, group, newer_than=now - 1)
                if fresh is not None:
                    return _response_from(request, fresh, _now(), "HIT")
                return render_from_replica(view_func, request, *args, **kwargs)
            deferred = False
            try:
                # Another request may have stored the page between our read and our lock.
                entry = _read_entry(base, encoding, group)
                if _is_fresh(entry, _now()):
                    return _response_from(request, entry, _now(), "HIT")
                generation = _generation(group)
                response = render_from_replica(view_func, request, *args, **kwargs)
                if getattr(request, "shared_page_middleware", False):
                    # The middleware stores the response once every middleware below it has
                    # added its headers, and releases the lock then.
                    request.shared_page_pending = PendingPage(base, encoding, generation, modified)
                    deferred = True
                    return response
                return _store_and_answer(request, response, base, encoding, generation, modified)
            finally:
                if not deferred:
                    _release_lock(base)

        wrapper.cache_class = SHARED
        wrapper.shared_page = SharedPageKey(query, group)
        return wrapper

    return decorator(view) if view is not None else decorator


class SharedPageKey:
    """Where a shared view's pages live in the cache: the parameters and group of its key."""

    def __init__(self, query, group):
        self.query = tuple(query)
        self.group = group

    def key(self, request):
        """Return the page's key prefix and the encoding the client takes."""
        return page_key_base(request.path, _normalised_query(request, self.query)), _accepted_encoding(request)

    def fresh_response(self, request):
        """Answer from the cache if a fresh copy is there (one cache read), else None."""
        base, encoding = self.key(request)
        now = _now()
        entry = _read_entry(base, encoding, self.group)
        return _response_from(request, entry, now, "HIT") if _is_fresh(entry, now) else None


class PendingPage:
    """A render that holds the page's lock until it is stored (or found unfit to store)."""

    def __init__(self, base, encoding, generation, modified):
        self.base = base
        self.encoding = encoding
        self.generation = generation
        self.modified = modified

    def store_and_answer(self, request, response):
        """Store the render (both encodings) and answer it in the client's encoding."""
        try:
            return _store_and_answer(request, response, self.base, self.encoding, self.generation, self.modified)
        finally:
            _release_lock(self.base)


class SharedPageMiddleware:
    """Answer fresh shared pages before the rest of the middleware runs; store them after it.

    Django's own cache middleware serves a hit from the bottom of the middleware list, so every
    hit still pays for the session, CSRF, auth and messages layers. A shared page needs none of
    them (that is what makes it shared), so this middleware sits right after SecurityMiddleware
    (whose redirect to HTTPS and headers must still apply to every answer) and answers a fresh
    hit with one cache read: the stored copy already carries the headers the middleware below
    added when it was rendered (CSP, X-Frame-Options), because the copy is stored here, on the
    way out, and not in the view.

    Hits skip CommonMiddleware, so the Host header is checked here against ALLOWED_HOSTS, as
    CommonMiddleware does, and a request with a bad Host is left to it (its 400 then carries
    every header). Misses, stale copies and every non-shared URL pass straight through: the
    view's `shared_page` decorator takes the lock and renders, as it does without this.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        page = _shared_page_of(request)
        if page is None or not _host_allowed(request):
            # A Host not in ALLOWED_HOSTS goes on down: CommonMiddleware answers it 400, with
            # the headers of the middleware in between (CSP, X-Frame-Options) on the answer.
            return self.get_response(request)
        response = page.fresh_response(request)
        if response is not None:
            return response
        request.shared_page_middleware = True
        response = self.get_response(request)
        pending = request.__dict__.pop("shared_page_pending", None)
        return pending.store_and_answer(request, response) if pending is not None else response


def _host_allowed(request):
    try:
        request.get_host()
    except DisallowedHost:
        return False
    return True


def _shared_page_of(request):
    """Return the SharedPageKey of the shared view this GET or HEAD goes to, else None."""
    if request.method not in ("GET", "HEAD"):
        return None
    try:
        match = resolve(request.path_info, getattr(request, "urlconf", None))
    except Resolver404:
        return None
    return getattr(match.func, "shared_page", None)


def _is_fresh(entry, now):
    """Tell whether a stored page is younger than the TTL."""
    return entry is not None and now < entry["stored_at"] + settings.PRODUCT_CACHE_SECONDS


def _store_and_answer(request, response, base, encoding, generation, modified):
    """Store a fresh render (both encodings) and answer it in the client's encoding."""
    if response.status_code != 200 or response.streaming or _declines_sharing(response):
        return response
    if _touched_visitor_state(request, response):
        # A shared page must not depend on the visitor. Storing it would hand one visitor's
        # session, token or cookie to everyone, so it is neither stored nor shareable.
        logger.error("shared page %s touched the session, a CSRF token, a CSP nonce or cookies; not cached",
                     request.path)
        add_never_cache_headers(response)
        return response
    _shared_headers(response, modified.timestamp() if modified else None)
    stored_at = _now()
    entries = _entries_from(response, stored_at, generation)
    # Kept past the TTL for STALE_CACHE_SECONDS, so waiting requests have something to serve.
    _store_entries(base, entries, settings.PRODUCT_CACHE_SECONDS + settings.STALE_CACHE_SECONDS)
    return _response_from(request, entries[encoding], stored_at, "MISS")


def private_page(view):
    """Mark a per-visitor view: never stored by browsers or shared caches, varies on Cookie."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        mark_private(response)
        return response

    wrapper.cache_class = PRIVATE
    return wrapper


def mark_private(response):
    """Add the private class's headers to a response."""
    add_never_cache_headers(response)
    patch_vary_headers(response, ("Cookie",))
    return response


def health_check(view):
    """Mark a liveness view: answered fresh every time, for Varnish probes and load balancers."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        patch_cache_control(response, no_store=True)
        return response

    wrapper.cache_class = HEALTH
    return wrapper


# ------------------------------------------------------------------------------------------------
# Dropping pages when the catalog changes
# ------------------------------------------------------------------------------------------------


@_guarded(default=None)
def drop_pages(urls):
    """Drop the Django cache entries of these URLs ("/path/" or "/path/?page=2")."""
    keys = []
    for url in urls:
        path, _, query = url.partition("?")
        base = page_key_base(path, query)
        keys += [f"{base}:{enc}" for enc in ENCODINGS]
    cache.delete_many(keys)


@_guarded(default=None)
def drop_group(group):
    """Drop every page of a group by giving the group a new generation."""
    cache.set(GENERATION_KEY.format(group), uuid.uuid4().hex, None)


def ban_in_varnish(path_regex):
    """Ask every Varnish in VARNISH_URL to drop the objects whose path matches the regex.

    A failed ban is logged, never raised: an admin save must not fail because a cache is down
    (the TTL still bounds how long the old page can live there).
    """
    for base_url in settings.VARNISH_URLS:
        request = urllib.request.Request(base_url.rstrip("/") + "/", method="BAN", headers={"X-Ban-Path": path_regex})
        try:
            with urllib.request.urlopen(request, timeout=settings.VARNISH_PURGE_TIMEOUT) as answer:
                answer.read()
        except Exception as exc:  # URLError, timeouts, HTTP errors
            logger.warning("Varnish ban %r at %s failed: %s", path_regex, base_url, exc)


def _category_listing_urls(category):
    """Every page of a category's listing, with and without `?page=`."""
    from shop.views import PRODUCTS_PER_PAGE

    url = category.get_absolute_url()
    count = category.products.active().count() if category.pk else 0  # pk is None once deleted
    pages = count // PRODUCTS_PER_PAGE + 2  # one spare page for a product just removed
    return [url] + [f"{url}?page={n}" for n in range(1, pages + 1)]


def invalidate_product(product, old_slug=None, old_category=None):
    """Drop every cached page that shows this product: detail, its listings, home, search."""
    urls = [product.get_absolute_url(), "/"] + _category_listing_urls(product.category)
    slugs = [product.slug]
    categories = [product.category.slug]
    if old_slug and old_slug != product.slug:
        urls.append(f"/products/{old_slug}/")
        slugs.append(old_slug)
    if old_category is not None and old_category.pk != product.category_id:
        urls += _category_listing_urls(old_category)
        categories.append(old_category.slug)
    _drop_after_replication(urls, _ban_regex(products=slugs, categories=categories))


def invalidate_category(category, product_slugs=()):
    """Drop a category's listing, home, search and the pages of its products (they name it)."""
    urls = ["/"] + _category_listing_urls(category) + [f"/products/{slug}/" for slug in product_slugs]
    # Every product page names its category; a rename is rare, so ban them all in one go.
    _drop_after_replication(urls, _ban_regex(products=(), categories=[category.slug]) + r"|^/products/")


def _drop_everywhere(urls, ban_regex):
    """Drop pages from Django's cache (and the search group) and BAN them in every Varnish."""
    drop_pages(urls)
    drop_group("search")
    ban_in_varnish(ban_regex)


def _drop_after_replication(urls, ban_regex):
    """Drop the pages once the replica has the change; if it is behind, drop them twice.

    A replica behind the primary can still be read by other processes until their next health
    check, and a page rendered from it would cache the old data again. So when the wait times out
    the pages are dropped now and once more when every process must be skipping the replica
    (the "delayed double delete" of cache invalidation).
    """
    caught_up = wait_for_replica()
    _drop_everywhere(urls, ban_regex)
    if not caught_up:
        threading.Timer(replica_settle_seconds(), _drop_everywhere, (urls, ban_regex)).start()


def _ban_regex(products, categories):
    """One regex for Varnish: the product pages, the category listings, home and search."""
    alternatives = [r"^/$", r"^/search/"]
    alternatives += [rf"^/categories/{re.escape(slug)}/" for slug in categories]
    alternatives += [rf"^/products/{re.escape(slug)}/" for slug in products]
    return "|".join(alternatives)
