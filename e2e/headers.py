"""Reading caching headers: Cache-Control, Vary, and whether an answer came from the edge's cache."""

import re
from dataclasses import dataclass

ONE_YEAR = 31536000
# Cache statuses that mean "served from the cache" (Cloudflare's words; STALE is still a copy).
CACHED_STATUSES = {"HIT", "STALE", "UPDATING", "REVALIDATED"}


def cache_control(response):
    """Return Cache-Control as {directive: value or ""}, directives in lower case."""
    directives = {}
    for part in response.headers.get("Cache-Control", "").split(","):
        name, _, value = part.strip().partition("=")
        if name:
            directives[name.lower()] = value.strip().strip('"')
    return directives


def seconds(directives, name):
    """Return the number of directive `name` (max-age, s-maxage), or None."""
    try:
        return int(directives[name])
    except (KeyError, ValueError):
        return None


def shared_cacheable(response):
    """Return why the answer is not one a shared cache may keep, or "" when it is."""
    cc = cache_control(response)
    value = response.headers.get("Cache-Control", "(none)")
    if {"private", "no-store", "no-cache"} & cc.keys():
        return f"Cache-Control: {value} (not for a shared cache)"
    if "public" not in cc:
        return f"Cache-Control: {value} (no public)"
    lifetime = seconds(cc, "s-maxage") if "s-maxage" in cc else seconds(cc, "max-age")
    if not lifetime or lifetime <= 0:
        return f"Cache-Control: {value} (no s-maxage or max-age above 0)"
    return ""


def private_answer(response):
    """Return why the answer could be kept by a shared cache, or "" when it is private."""
    cc = cache_control(response)
    value = response.headers.get("Cache-Control", "(none)")
    if not {"private", "no-store"} & cc.keys():
        return f"Cache-Control: {value} (neither private nor no-store)"
    if {"public", "s-maxage"} & cc.keys():
        return f"Cache-Control: {value} (public or s-maxage on a private answer)"
    return ""


def vary(response):
    """Return the Vary header's field names, in lower case."""
    return {name.strip().lower() for name in response.headers.get("Vary", "").split(",") if name.strip()}


def varies_on_cookie(response):
    return bool({"cookie", "*"} & vary(response))


def age(response):
    """Return the Age header in seconds, or None."""
    try:
        return int(response.headers["Age"])
    except (KeyError, ValueError):
        return None


@dataclass(frozen=True)
class CacheSignal:
    """What an answer says about the edge's cache: which header told, and what it said."""

    source: str  # "X-Cache", "CF-Cache-Status", "Server-Timing", "Age", or "" (nothing exposed)
    hit: bool | None  # None: the header cannot tell yet (Age 0)
    evidence: str  # the header as received, for the report


def edge_signal(response, earlier=None):
    """Return what `response` says about a cache hit; `earlier`, an earlier answer of the same URL.

    The most explicit header the deployment sends wins: X-Cache (Varnish, Fastly, CloudFront,
    Squid: the last of several values is the outermost cache), then CF-Cache-Status, then a
    Server-Timing entry about the cache, then Age (above 0, or grown since `earlier`).
    """
    headers = response.headers
    if "X-Cache" in headers:
        last = headers["X-Cache"].split(",")[-1].upper()
        return CacheSignal("X-Cache", "HIT" in last, f"X-Cache: {headers['X-Cache']}")
    if "CF-Cache-Status" in headers:
        status = headers["CF-Cache-Status"].strip().upper()
        return CacheSignal("CF-Cache-Status", status in CACHED_STATUSES, f"CF-Cache-Status: {status}")
    timing = server_timing_hit(headers.get("Server-Timing", ""))
    if timing is not None:
        return CacheSignal("Server-Timing", timing, f"Server-Timing: {headers['Server-Timing']}")
    now = age(response)
    if now is not None:
        before = age(earlier) if earlier is not None else None
        grown = before is not None and now > before
        hit = True if now > 0 or grown else None
        return CacheSignal("Age", hit, f"Age: {now}" + (f" (was {before})" if before is not None else ""))
    return CacheSignal("", False, "no X-Cache, CF-Cache-Status, cache entry in Server-Timing, or Age")


# Server-Timing entries written by an edge cache (not by the app: `django;desc=HIT` is Django's cache).
_EDGE_NAMES = re.compile(r"cache|hit|cdn|edge|varnish|fastly|akamai|cloudfront", re.IGNORECASE)
_FROM_CACHE = re.compile(r"\b(hit|grace|stale)\b", re.IGNORECASE)
_NOT_FROM_CACHE = re.compile(r"\b(miss|pass|bypass|expired|dynamic)\b", re.IGNORECASE)


def server_timing_hit(value):
    """Return True or False from the outermost edge entry of a Server-Timing header, None without one.

    Entries such as `varnish;desc="HIT"` (this stack), `cdn-cache; desc=HIT` (Akamai),
    `hit-state;desc=HIT` (Fastly) or `cdn-cache-hit`. Each layer appends its own, so the last
    entry that says hit or miss is the cache closest to the client.
    """
    verdict = None
    for entry in value.split(","):
        name, _, params = entry.strip().partition(";")
        if not _EDGE_NAMES.search(name):
            continue
        desc = re.search(r'desc="?([^;"]*)', params)
        words = f"{re.sub(r'[-_]', ' ', name)} {desc.group(1) if desc else ''}"
        if _NOT_FROM_CACHE.search(words):
            verdict = False
        elif _FROM_CACHE.search(words):
            verdict = True
    return verdict


def from_cache(response):
    """Return the header that shows `response` came from a shared cache, or ""."""
    signal = edge_signal(response)
    if signal.source and signal.source != "Age" and signal.hit:
        return signal.evidence
    if (age(response) or 0) > 0:
        return f"Age: {age(response)}"
    return ""
