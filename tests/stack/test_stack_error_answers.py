"""Errors through the stack: 404s live briefly, and no oversized or malformed request poisons a page.

Cache-poisoned denial of service (CPDoS): a request to a real page's URL with a header too
big, too many headers or a meta character makes some server refuse it; if that refusal were
stored under the page's key, every visitor would get it. Each layer's limit answers 400 here
(Varnish: a header line over 8 KiB, a control byte; Nginx: headers over 4 x 8 KiB), a 4xx that
is never stored, and the next clean request gets the page. (5xx are never stored either: the
outage tests in test_stack_faults_*.py ask twice and get MISS twice.)
"""

import re
import time

import pytest

from tests.stack.edge import get, raw
from tests.stack.fixtures import http_session, wait_until

pytestmark = pytest.mark.stack


def test_404s_are_stored_briefly_then_asked_again(fault_stack):
    # This stack's NOT_FOUND_CACHE_SECONDS is 2 (the default is 10); Django says so in s-maxage.
    stack = fault_stack
    http = http_session()
    url = stack.url("/products/no-such-product/")

    first, second = http.get(url), http.get(url)
    assert (first.status_code, first.headers["X-Cache"]) == (404, "MISS")
    assert first.headers["Cache-Control"] == "public, max-age=0, s-maxage=2"
    assert (second.status_code, second.headers["X-Cache"]) == (404, "HIT")

    # Past its 2 s, the next request triggers a refresh: soon a fresh copy (Age below 2) is served.
    time.sleep(2.5)
    wait_until(lambda: int(http.get(url).headers["Age"]) < 2, 5, "the 404 refreshed after its TTL", step=0.3)


def test_the_main_stack_gives_404s_the_default_ten_seconds(stack):
    response = http_session().get(stack.url("/products/no-such-product/"))

    assert response.status_code == 404
    assert re.fullmatch(r"public, max-age=0, s-maxage=10", response.headers["Cache-Control"])


def _headers(count, size, name=b"X-Big"):
    return b"".join(name + b"%d: " % i + b"a" * size + b"\r\n" for i in range(count))


ATTACKS = {
    "one header past 8 KiB (Varnish)": _headers(1, 9000),
    "more headers than Varnish takes": _headers(70, 10),
    "a NUL byte in a header": b"X-Meta: a\x00b\r\n",
    "a bare CR in a header": b"X-Meta: a\rb\r\n",
    "a space in a header name": b"X Meta: 1\r\n",
    "headers past 4 x 8 KiB (Nginx)": _headers(5, 6200),
    "a bad Content-Length": b"Content-Length: -1\r\n",
    "Transfer-Encoding and Content-Length": b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
}


@pytest.mark.parametrize("attack", ATTACKS)
def test_an_oversized_or_malformed_request_gets_a_4xx_and_never_poisons_the_page(stack, catalog, attack):
    [product] = catalog.fresh()

    answer = raw(stack.varnish_port, get(product.path, headers=ATTACKS[attack]))
    clean = [http_session().get(stack.url(product.path)) for _ in range(2)]

    assert answer.status is not None and 400 <= answer.status < 500, answer
    assert [c.status_code for c in clean] == [200, 200]
    assert f"€{product.price}</p>" in clean[1].text
    assert clean[1].headers["X-Cache"] == "HIT"


def test_a_huge_cookie_on_a_shared_page_is_dropped_not_refused(stack, catalog):
    [product] = catalog.fresh()

    # Varnish strips cookies from shared URLs before anything else sees them.
    cookie = b"Cookie: c=" + b"x" * 7900 + b"\r\n"
    answer = raw(stack.varnish_port, get(product.path, host=f"127.0.0.1:{stack.varnish_port}", headers=cookie))
    # Without gzip, as the raw request asked: the same (identity) copy of the page.
    clean = http_session().get(stack.url(product.path), headers={"Accept-Encoding": "identity"})

    assert answer.status == 200
    assert f"€{product.price}</p>".encode() in answer.body
    assert clean.headers["X-Cache"] == "HIT"


def test_a_huge_get_body_is_ignored_and_the_page_stays_whole(stack, catalog):
    [product] = catalog.fresh()
    http = http_session()

    # Varnish drops the body of a GET it fetches for the cache; Nginx never sees it.
    attacked = http.get(stack.url(product.path), data=b"x" * 2_000_000)
    clean = http.get(stack.url(product.path))

    assert attacked.status_code == 200
    assert clean.headers["X-Cache"] == "HIT" and clean.content == attacked.content


def test_oversized_bodies_get_a_413_at_the_edge(stack, catalog):
    [product] = catalog.fresh()
    http = http_session()
    http.get(stack.url("/api/cart/"))
    headers = {"X-CSRFToken": http.cookies["csrftoken"], "Origin": stack.varnish_url}

    api = http.post(stack.url("/api/cart/items/"), data=b"{" + b" " * 40_000 + b"}", headers=headers)
    page = http.post(stack.url(product.path), data=b"x" * 2_000_000, headers=headers)

    # The API reads a few bytes: Nginx refuses past 16 KiB, in the API's JSON.
    assert api.status_code == 413
    assert api.headers["Content-Type"] == "application/json"
    assert "error" in api.json()
    # Elsewhere past 1 MiB (client_max_body_size).
    assert page.status_code == 413
    assert http.get(stack.url("/api/cart/")).json()["count"] == 0


def test_a_request_nginx_accepts_is_never_too_big_for_uwsgi(stack, catalog):
    [product] = catalog.fresh()

    answer = raw(stack.varnish_port, get(f"{product.path}?q={'q' * 7000}", headers=_headers(3, 7900)))

    assert answer.status is not None and answer.status < 500, answer
