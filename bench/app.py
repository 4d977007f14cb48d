"""Bench-only views and the render counter; mounted by bench/urls.py, never by the store."""

import functools
import json
import os
from pathlib import Path

from django.http import HttpResponse

from shop import views


def bare(request):
    """Answer a few bytes: the cost of Django's request path alone (URL resolution, middleware)."""
    return HttpResponse("ok\n", content_type="text/plain")


@functools.cache
def _page_copy():
    """Read the product page's body and headers, as a HIT answered them (BENCH_PAGE_COPY), once."""
    saved = json.loads(Path(os.environ["BENCH_PAGE_COPY"]).read_text())
    return saved["body"].encode(), saved["headers"]


def page_copy(request):
    """Answer the product page's own bytes and headers with no other work: the floor of a HIT's answer."""
    body, headers = _page_copy()
    response = HttpResponse(body)
    for name, value in headers:
        response[name] = value
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
