"""Stored pages: what an entry holds, how it is read and written, and how a response is rebuilt.

Every cache call goes through `_guarded`: a cache server that is down, or a missing cache table,
means uncached pages, never an error page.
"""

import hashlib
import logging
import time
import uuid
from functools import wraps

from django.core.cache import cache
from django.http import HttpResponse
from django.utils.cache import get_conditional_response
from django.utils.http import parse_http_date_safe
from django.utils.text import compress_string

from pagecache.keys import ENCODINGS

logger = logging.getLogger(__name__)

# How long (seconds) a render may hold a page's lock.
LOCK_SECONDS = 10

# Pages whose keys cannot be listed (search results) are dropped together by changing the
# generation stored under this key; it is read in the same round trip as the page.
GENERATION_KEY = "page-generation:{}"

# The shape of an entry, part of its key: a release that changes the shape changes this, so that
# during a rolling deploy old and new workers never read each other's entries (a KeyError, a 500)
# but each its own; the other shape's copies age out within their TTL.
ENTRY_FORMAT = "response"  # {"stored_at", "generation", "response": a pickled HttpResponse}


def _entry_key(base, encoding):
    return f"{base}:{encoding}:{ENTRY_FORMAT}"


def now():
    """Return the time; tests replace this to move the clock."""
    return time.time()


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
def read_entry(base, encoding, group):
    """Read one page variant, and its group's generation, in one round trip."""
    key = _entry_key(base, encoding)
    if group is None:
        return cache.get(key)
    gen_key = GENERATION_KEY.format(group)
    found = cache.get_many([key, gen_key])
    entry, current = found.get(key), found.get(gen_key)
    # No generation stored (evicted, culled, flushed) means no page of the group can be trusted:
    # a missing generation must never match the pages of an older one.
    if entry is None or current is None or entry.get("generation") != current:
        return None
    return entry


@_guarded(default=None)
def store_entries(base, entries, timeout):
    cache.set_many({_entry_key(base, enc): entry for enc, entry in entries.items()}, timeout)


@_guarded(default=None)
def delete_pages(bases):
    cache.delete_many([_entry_key(base, enc) for base in bases for enc in ENCODINGS])


@_guarded(default=None)
def generation(group):
    """Return the group's current generation, making one if there is none."""
    if group is None:
        return None
    key = GENERATION_KEY.format(group)
    cache.add(key, uuid.uuid4().hex, None)
    return cache.get(key)


@_guarded(default=None)
def new_generation(group):
    # Stored without expiry: if it expired, pages stored under the old one would come back.
    cache.set(GENERATION_KEY.format(group), uuid.uuid4().hex, None)


@_guarded(default=True)
def take_lock(base):
    # A fault here answers True: render without the lock rather than wait for a dead cache.
    return cache.add(f"{base}:lock", 1, LOCK_SECONDS)


@_guarded(default=None)
def release_lock(base):
    cache.delete(f"{base}:lock")


def is_locked(base):
    return cache.get(f"{base}:lock") is not None


def entries_from(response, stored_at, group_generation):
    """Build the identity and gzip entries of a rendered page.

    Each entry holds the answer itself: a plain HttpResponse with its final headers, as Django's
    cache middleware stores its pages. A hit then costs one unpickling instead of a dozen headers
    set (and checked) one by one. Every Django cache backend pickles what it stores, so each read
    gets a copy of its own to add its Age to.
    """
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
        stored = HttpResponse(content, status=response.status_code, headers=variant)
        # Served above CommonMiddleware, which would otherwise add it: lets Nginx and Varnish
        # know the length up front instead of reading to the end of the stream.
        stored["Content-Length"] = str(len(content))
        entries[encoding] = {"stored_at": stored_at, "generation": group_generation, "response": stored}
    return entries


def response_from(request, entry, at, outcome):
    """Return a stored entry's answer with its age, or a 304 if the client has it."""
    response = entry["response"]
    # The time this copy has already spent in a cache: Varnish and browsers subtract it from
    # s-maxage/max-age, so a page is never kept for more than one TTL in all.
    response["Age"] = str(max(0, int(at - entry["stored_at"])))
    response["X-Django-Cache"] = outcome
    if not _is_conditional(request):
        return response
    last_modified = parse_http_date_safe(response.get("Last-Modified", ""))
    return get_conditional_response(request, etag=response.get("ETag"), last_modified=last_modified, response=response)


_CONDITIONS = ("HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE", "HTTP_IF_MATCH", "HTTP_IF_UNMODIFIED_SINCE")


def _is_conditional(request):
    """Tell whether the request has a condition to check (most have none: no dates to parse)."""
    return any(name in request.META for name in _CONDITIONS)
