"""The cache key of a shared page: its path, the query parameters its view reads, the encoding.

A key must be canonical (one key for every spelling of the same page: parameter order, tracking
parameters the view never reads) and injective (two different pages never share one). Both the
path and each value are percent-encoded before they are joined, so no value can forge a
separator: `?q=linen%26page%3D2` (a search for "linen&page=2") and `?q=linen&page=2` differ.
"""

import hashlib
from functools import lru_cache
from urllib.parse import quote, urlencode

# The two representations stored per page. The key carries the encoding and the response says
# `Vary: Accept-Encoding`, so the key and the Vary header always agree.
ENCODINGS = ("identity", "gzip")


def canonical_query(query, names):
    """Return the parameters of `names` found in the QueryDict `query`, encoded, in that order.

    A parameter given twice counts with its last value, the one `request.GET[name]` returns, so
    the key follows what the view reads. Empty values are left out, as the view sees no value.
    """
    return urlencode([(name, query[name]) for name in names if query.get(name)])


def page_key(path, query=""):
    """Return the key prefix of the page at `path` with its canonical `query`."""
    text = f"{quote(path, safe='/')}?{query}"
    return "page:" + hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


@lru_cache(maxsize=256)
def accepted_encoding(accept_encoding):
    """Return "gzip" if an Accept-Encoding header value takes gzip, else "identity".

    As RFC 9110 (12.5.3) reads it: `gzip` with a weight above 0, or `*` above 0 when gzip is not
    named; `q=0`, `q=0.0` or `q=0.000` refuse it. Browsers send a handful of distinct values, so
    each is read once and remembered (in a bounded LRU cache: made-up values cost their own reads).
    """
    weights = {}
    for part in accept_encoding.lower().split(","):
        name, _, params = part.partition(";")
        weights[name.strip()] = _weight(params)
    weight = weights.get("gzip", weights.get("x-gzip", weights.get("*", 0.0)))
    return "gzip" if weight > 0 else "identity"


def _weight(params):
    """Return the q value of one coding's parameters (1 when absent, 0 when unreadable)."""
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip() == "q":
            try:
                return float(value.strip())
            except ValueError:
                return 0.0
    return 1.0
