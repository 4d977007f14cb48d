"""Cache deception and private-data leaks, through the real stack.

Visitor A has a cart and asks for private URLs dressed as static files (/cart/x.css) or hidden
behind delimiters and escapes (/cart;x.css, %2f, %3b, %23, %3f, /static/..%2fcart/); visitor B,
without cookies, then asks for the same URLs. B must never get A's data, from Django or from
Varnish's cache. Three decisions keep it so: Django's routes are anchored (404 for any suffix),
Varnish passes private prefixes and strips cookies from everything else (a URL that is not
plainly private reaches Django without a session), and escapes and dot segments are refused at
the edge (deploy/varnish/shop.vcl). Then: no shared answer carries a CSRF token or a cookie of
A's, and every personal JSON answer is `private, no-store`.
"""

import pytest

from tests.stack.edge import get, raw
from tests.stack.fixtures import http_session
from tests.stack.throwaway import Shopper

pytestmark = pytest.mark.stack

DECEPTIVE_PATHS = [
    "/cart/x.css",
    "/cart/x.js",
    "/cart/.css",
    "/cart/x.png?v=1",
    "/cart;x.css",
    "/cart/;x.css",
    "/cart/x.css;",
    "/cart?x.css",
    "/cart/?x.css",
    "/api/cart/x.json",
    "/api/cart/.json",
    "/api/cart/?x.json",
    "/api/cart;x.json",
    "/cart%2fx.css",
    "/cart/%2e%2e/x.css",
    "/cart%3bx.css",
    "/cart/%3bx.css",
    "/cart/%23x.css",
    "/cart%23x.css",
    "/cart/%3fx.css",
    "/cart%3fx.css",
    "/api/cart/%2f.json",
    "/api/cart%2f.json",
    "/static/..%2fcart/",
    "/static/../cart/",
    "/static/%2e%2e/cart/",
    "/static/shop/..%2f..%2fcart/",
    "/media/..%2fapi/cart/",
    "//cart/x.css",
    "/CART/x.css",
]


@pytest.fixture(scope="module")
def visitor_a(stack, catalog):
    """A visitor with 7 of one product in the cart, and the strings that would betray them."""
    [product] = catalog.fresh()
    a = Shopper(stack).start()
    response = a.add(product.slug, 7)
    assert response.status_code == 200
    secrets = [
        a.http.cookies["sessionid"],
        a.http.cookies["csrftoken"],
        f'data-cart-line="{product.slug}"',
        f'"product": "{product.slug}"',
        '"quantity": 7',
    ]
    return a, secrets


def _cookie_header(shopper):
    return "; ".join(f"{name}={value}" for name, value in shopper.http.cookies.items()).encode()


@pytest.mark.parametrize("path", DECEPTIVE_PATHS)
def test_private_urls_dressed_as_files_never_show_a_cart_to_another_client(stack, visitor_a, path):
    a, secrets = visitor_a
    as_a = [raw(stack.varnish_port, get(path, headers=b"Cookie: " + _cookie_header(a) + b"\r\n")) for _ in range(2)]
    as_b = [raw(stack.varnish_port, get(path)) for _ in range(2)]

    for answer in as_a + as_b:
        assert answer.status is not None and answer.status < 500, (path, answer)
    for answer in as_b:
        leaked = [secret for secret in secrets if secret.encode() in answer.data]
        assert leaked == [], (path, answer.headers.get("x-cache"), leaked)
    # What A was answered with A's cart (the real private URLs, with a query) was never stored.
    for answer in as_a:
        if any(secret.encode() in answer.body for secret in secrets):
            assert answer.headers["x-cache"] == "MISS", path
            assert "no-store" in answer.headers["cache-control"], path


def test_no_shared_page_carries_a_csrf_token_or_a_visitors_cookie(stack, catalog, visitor_a):
    a, secrets = visitor_a
    [product] = catalog.fresh()
    shared = ["/", f"/products/{product.slug}/", f"/categories/{product.category}/", "/search/?q=mug"]
    b = http_session()

    for path in shared:
        with_a_session = a.http.get(stack.url(path))
        without = b.get(stack.url(path))
        for response in (with_a_session, without):
            assert response.status_code == 200, path
            assert "Set-Cookie" not in response.headers, path
            assert "csrfmiddlewaretoken" not in response.text, path
            assert "Cookie" not in response.headers.get("Vary", ""), path
            assert [s for s in secrets if s in response.text] == [], path
        assert with_a_session.content == without.content, path


def _personal_answers(stack, catalog):
    [product] = catalog.fresh()
    shopper = Shopper(stack).start()
    http, url = shopper.http, stack.url
    headers = {"X-CSRFToken": http.cookies["csrftoken"], "Origin": stack.varnish_url}
    return {
        "GET cart": http.get(url("/api/cart/")),
        "POST add": http.post(url("/api/cart/items/"), json={"product": product.slug}, headers=headers),
        "POST bad quantity": http.post(
            url("/api/cart/items/"), json={"product": product.slug, "quantity": -1}, headers=headers
        ),
        "POST unknown product": http.post(url("/api/cart/items/"), json={"product": "no-such-thing"}, headers=headers),
        "POST without token": http.post(url("/api/cart/items/"), json={"product": product.slug}),
        "PATCH": http.patch(url(f"/api/cart/items/{product.slug}/"), json={"quantity": 3}, headers=headers),
        "PUT (405)": http.put(url("/api/cart/"), headers=headers),
        "DELETE": http.delete(url(f"/api/cart/items/{product.slug}/"), headers=headers),
        "GET cart page": http.get(url("/cart/")),
    }


def test_every_personal_answer_is_private_no_store_and_never_a_hit(stack, catalog):
    answers = _personal_answers(stack, catalog)

    statuses = {name: r.status_code for name, r in answers.items()}
    assert statuses == {
        "GET cart": 200,
        "POST add": 200,
        "POST bad quantity": 400,
        "POST unknown product": 404,
        "POST without token": 403,
        "PATCH": 200,
        "PUT (405)": 405,
        "DELETE": 200,
        "GET cart page": 200,
    }
    for name, response in answers.items():
        control = {part.strip() for part in response.headers["Cache-Control"].split(",")}
        assert {"private", "no-store"} <= control, name
        assert response.headers["X-Cache"] == "MISS", name
        if name != "GET cart page":
            assert response.headers["Content-Type"] == "application/json", name
