"""Bench-only views and the render counter; mounted by bench/urls.py, never by the store."""

import functools
import json
import os
import pickle
from pathlib import Path

from django.conf import settings
from django.core.cache import caches
from django.http import Http404, HttpResponse

from shop import views

# Where the floor stack keeps its copy of the page in each cache it reads (page_from_cache).
FLOOR_PAGE_KEY = "floor-page"


def bare(request):
    """Answer a few bytes: the cost of Django's request path alone (URL resolution, middleware)."""
    return HttpResponse("ok\n", content_type="text/plain")


@functools.cache
def _page_answer():
    """The product page's answer as a HIT stores it (BENCH_PAGE_COPY): a pickled HttpResponse, once."""
    saved = json.loads(Path(os.environ["BENCH_PAGE_COPY"]).read_text())
    body = saved["body"].encode()
    response = HttpResponse(body, headers=dict(saved["headers"]))
    response["Content-Length"] = str(len(body))
    return pickle.dumps(response, pickle.HIGHEST_PROTOCOL)


def page_copy(request):
    """Answer the product page's own bytes and headers, unpickled as a HIT's are: the floor of its answer."""
    return pickle.loads(_page_answer())


def page_from_cache(request, alias):
    """Answer the page's copy read from one cache backend with one get: the floor of a HIT from it.

    What a HIT from that backend cannot do without (the read, the unpickling), with nothing of
    pagecache around it: no key, lock, Host check, Age or Server-Timing.
    """
    if alias not in settings.CACHES:
        raise Http404(f"no cache alias {alias!r} (BENCH_FLOOR_CACHES)")
    response = caches[alias].get(FLOOR_PAGE_KEY)
    if response is None:
        response = pickle.loads(_page_answer())
        caches[alias].set(FLOOR_PAGE_KEY, response, None)
    return response


# The product view as the store defines it, minus `shared_page`: `functools.wraps` keeps the
# undecorated view (still under @require_http_methods) in __wrapped__. This is the page with no
# cache at all: no cache read, no lock, no cache write, no gzip copy.
uncached_product = views.product_detail.__wrapped__


def count_render(request):
    """Append the path of this render to BENCH_RENDER_LOG (one write, atomic with O_APPEND)."""
    fd = os.open(os.environ["BENCH_RENDER_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{request.path}\n".encode())
    finally:
        os.close(fd)
    return {}
