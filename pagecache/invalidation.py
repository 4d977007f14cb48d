"""Drop pages after a change: by URL, by group, in Django's cache and at every edge.

What to drop is the project's knowledge (which URLs show a product); this module only knows how.
Call it from `transaction.on_commit` in a signal handler: dropping a page before the commit would
let a concurrent request cache the old data again.
"""

import logging
import os
from urllib.parse import urlsplit

from django.http import QueryDict
from django.urls import Resolver404, resolve

from pagecache import edge, store

logger = logging.getLogger(__name__)

# The longest ban regex sent (characters): it travels as a request header, and Varnish refuses
# headers past its http_req_hdr_len (8 KB by default).
MAX_BAN_LENGTH = 4000


def drop_urls(urls):
    """Drop the Django cache entries of these URLs ("/path/" or "/path/?page=2"), both encodings.

    Each URL is keyed as its view keys it (the parameters it reads, in its order), so a URL given
    here reaches the entry whatever spelling the visitor used.
    """
    bases = []
    for url in urls:
        parts = urlsplit(url)
        try:
            page = getattr(resolve(parts.path).func, "shared_page", None)
        except Resolver404:
            continue  # nothing is stored for a URL no view answers
        if page is not None:
            bases.append(page.key_of_url(parts.path, QueryDict(parts.query)))
    store.delete_pages(bases)


def drop_group(group):
    """Drop every page of a group at once, by giving the group a new generation."""
    store.new_generation(group)


def drop_everywhere(urls, groups=(), ban_prefixes=()):
    """Drop these URLs and groups from Django's cache, and ban them (and the prefixes) at every edge."""
    drop_urls(urls)
    for group in groups:
        drop_group(group)
    paths = sorted({urlsplit(url).path for url in urls})
    regex = edge.ban_regex(paths, ban_prefixes)
    if len(regex) > MAX_BAN_LENGTH:
        # Too many pages for one header: ban what they have in common, more than needed but never less.
        prefix = os.path.commonprefix(paths)
        logger.info("%d paths make a ban too long; banning the prefix %r instead", len(paths), prefix)
        regex = edge.ban_regex((), [prefix, *ban_prefixes])
    edge.ban(regex)
