"""The edge client: tell every Varnish in VARNISH_URL to drop pages, and never fail the caller.

Like Wagtail's `frontend_cache`, the edge only receives purges: which URLs show a changed object
is the project's knowledge (its models' `get_absolute_url()`, `reverse()`), handed here as paths.
A ban that fails is logged, never raised: an admin save must not fail because an edge is down or
not configured (the TTL still bounds how long an old page can live there).
"""

import logging
import re
import urllib.request

from pagecache.conf import setting, varnish_urls

logger = logging.getLogger(__name__)


def ban(path_regex):
    """Ask every edge in VARNISH_URL to drop the objects whose URL matches the regex."""
    if not path_regex:
        return  # an empty regex would match, and drop, every object
    try:
        edges, timeout = varnish_urls(), float(setting("VARNISH_PURGE_TIMEOUT"))
    except Exception as exc:  # a malformed setting: say so, and keep the save that called us
        logger.error("Varnish ban %r not sent: bad VARNISH_URL or VARNISH_PURGE_TIMEOUT: %s", path_regex, exc)
        return
    for base_url in edges:
        try:
            request = urllib.request.Request(
                base_url.rstrip("/") + "/", method="BAN", headers={"X-Ban-Path": path_regex}
            )
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                answer.read()
        except Exception as exc:  # URLError, timeouts, HTTP errors, a URL without a scheme
            logger.warning("Varnish ban %r at %s failed: %s", path_regex, base_url, exc)


def ban_regex(paths=(), prefixes=()):
    """Return one regex over URLs for `ban`: each path with any query string, each prefix.

    `/` matches `/` and `/?ref=x` but not `/about/`: each spelling of a page that an edge may have
    stored apart (the query string is part of its key) is dropped with it.
    """
    alternatives = [rf"^{re.escape(path)}(\?|$)" for path in paths]
    alternatives += [rf"^{re.escape(prefix)}" for prefix in prefixes]
    return "|".join(alternatives)
