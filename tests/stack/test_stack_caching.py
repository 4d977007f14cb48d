"""The cache contract (docs/design.md) through the real Varnish: shared pages are cached for everyone
whatever their cookies and never set one; the cart is never cached and never shown to anyone else;
an admin change reaches the very next visitor."""

import re
from decimal import Decimal

import pytest

from tests.stack.fixtures import ADMIN_PASSWORD, ADMIN_USERNAME, form_fields, http_session

pytestmark = pytest.mark.stack

UNRELATED_COOKIES = "_ga=GA1.2.3; sessionid=whatever"


def _get_until_hit(http, url, tries=3):
    """GET `url` until Varnish answers from its cache; return that response."""
    for _ in range(tries):
        response = http.get(url)
        assert response.status_code == 200, url
        if response.headers["X-Cache"] == "HIT":
            return response
    raise AssertionError(f"{url} never came from Varnish's cache: {dict(response.headers)}")


class Visitor:
    """A browser-like visitor of the store: cookies of its own, the cart API as cart.js calls it."""

    def __init__(self, stack):
        self.stack = stack
        self.http = http_session()

    def add_to_cart(self, product, quantity):
        # The first call hands out the csrftoken cookie, as it does for cart.js.
        self.http.get(self.stack.url("/api/cart/"))
        response = self.http.post(
            self.stack.url("/api/cart/items/"),
            json={"product": product.slug, "quantity": quantity},
            headers={
                "X-CSRFToken": self.http.cookies["csrftoken"],
                "Origin": self.stack.varnish_url,
                "Referer": self.stack.url(product.path),
            },
        )
        assert response.status_code == 200, response.text
        return response.json()

    def get(self, path):
        return self.http.get(self.stack.url(path))


# ------------------------------------------------------------------------------------------------
# Shared pages
# ------------------------------------------------------------------------------------------------


def test_second_get_of_a_product_page_is_a_hit_with_age(stack, catalog):
    [product] = catalog.fresh()
    http = http_session()

    first = http.get(stack.url(product.path))
    second = http.get(stack.url(product.path))

    assert first.status_code == 200
    assert first.headers["X-Cache"] == "MISS"
    assert second.status_code == 200
    assert second.headers["X-Cache"] == "HIT"
    assert int(second.headers["Age"]) >= 0
    assert second.headers["Cache-Control"] == (
        "public, max-age=10, s-maxage=60, stale-while-revalidate=10, stale-if-error=21600"
    )
    assert second.content == first.content


def test_gzip_and_plain_clients_each_get_a_stored_copy_never_a_gunzipped_one(stack, catalog):
    """Varnish keeps the two copies Django makes (http_gzip_support off) and serves each as is."""
    [product] = catalog.fresh()
    http = http_session()
    gzipped = _get_until_hit(http, stack.url(product.path))  # requests asks for gzip, deflate
    plain = http.get(stack.url(product.path), headers={"Accept-Encoding": "identity"})
    plain_again = http.get(stack.url(product.path), headers={"Accept-Encoding": "br"})

    assert gzipped.headers["Content-Encoding"] == "gzip"
    assert (plain.headers["X-Cache"], plain_again.headers["X-Cache"]) == ("MISS", "HIT")
    assert "Content-Encoding" not in plain_again.headers
    assert plain_again.content == gzipped.content  # requests gunzipped the first for us
    assert re.search(r"^http_gzip_support\s+Value is: off", stack.varnishadm("param.show", "http_gzip_support"), re.M)


def test_unrelated_cookies_get_the_page_cached_for_a_clean_request(stack, catalog):
    [product] = catalog.fresh()
    http = http_session()

    clean = http.get(stack.url(product.path))
    with_cookies = http.get(stack.url(product.path), headers={"Cookie": UNRELATED_COOKIES})

    assert clean.headers["X-Cache"] == "MISS"
    assert with_cookies.status_code == 200
    assert with_cookies.headers["X-Cache"] == "HIT"
    assert with_cookies.content == clean.content
    assert "Set-Cookie" not in with_cookies.headers


def _shared_urls(stack, catalog):
    """Home, every category, a few products, searches with a second page: every shared kind."""
    home = http_session().get(stack.url("/")).text
    categories = sorted(set(re.findall(r'href="(/categories/[^"/]+/)"', home)))
    assert len(categories) == 8, home
    products = [product.path for product in catalog.fresh(6)]
    # "the" is in every description: three pages of results.
    searches = ["/search/?q=mug", "/search/?q=the", "/search/?q=the&page=2"]
    return ["/", *categories, *products, *searches]


def test_no_shared_page_sets_a_cookie_hit_or_miss(stack, catalog):
    urls = _shared_urls(stack, catalog)
    shopper = Visitor(stack)
    shopper.add_to_cart(catalog.fresh()[0], 1)
    real_session = "; ".join(f"{name}={value}" for name, value in shopper.http.cookies.items())
    assert "sessionid=" in real_session and "csrftoken=" in real_session
    http = http_session()

    responses = []
    for cookies in (None, UNRELATED_COOKIES, real_session):
        for url in urls:
            headers = {"Cookie": cookies} if cookies else {}
            responses.append((url, cookies, http.get(stack.url(url), headers=headers)))

    assert [(u, r.status_code) for u, _, r in responses if r.status_code != 200] == []
    hits = [(u, c, r) for u, c, r in responses if r.headers["X-Cache"] == "HIT"]
    assert [(u, c, r.headers["Set-Cookie"]) for u, c, r in hits if "Set-Cookie" in r.headers] == []
    # The contract is stronger than "hits set no cookie": no shared page sets one, ever.
    assert [(u, r.headers["Set-Cookie"]) for u, _, r in responses if "Set-Cookie" in r.headers] == []
    # Cookies do not split the cache: after the clean pass, every request with cookies hits.
    assert [(u, c) for u, c, r in responses if c and r.headers["X-Cache"] != "HIT"] == []
    assert len(hits) >= 2 * len(urls)


# ------------------------------------------------------------------------------------------------
# Private pages
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_shoppers(stack, catalog):
    """Visitor A with 2 of one product in the cart, visitor B with 1 of another."""
    mine, theirs = catalog.fresh(2)
    a, b = Visitor(stack), Visitor(stack)
    a.add_to_cart(mine, 2)
    b.add_to_cart(theirs, 1)
    return (a, mine), (b, theirs)


def test_cart_api_and_cart_page_are_never_hits(two_shoppers):
    (a, _), (b, _) = two_shoppers
    responses = [visitor.get(path) for _ in range(3) for visitor in (a, b) for path in ("/api/cart/", "/cart/")]

    assert [r.status_code for r in responses] == [200] * len(responses)
    assert {r.headers["X-Cache"] for r in responses} == {"MISS"}
    for response in responses:
        assert "no-store" in response.headers["Cache-Control"]
        assert "private" in response.headers["Cache-Control"]
        assert "Cookie" in response.headers["Vary"]


def test_each_visitor_sees_only_their_own_cart(stack, two_shoppers):
    (a, mine), (b, theirs) = two_shoppers
    stranger = Visitor(stack)

    # Interleaved, so a cached or mixed-up answer for one would show in the other's.
    for _ in range(2):
        for visitor, own, other, count in ((a, mine, theirs, 2), (b, theirs, mine, 1)):
            cart = visitor.get("/api/cart/").json()
            assert cart["count"] == count
            assert [(item["product"], item["quantity"]) for item in cart["items"]] == [(own.slug, count)]
            page = visitor.get("/cart/").text
            assert re.findall(r'data-cart-line="([^"]+)"', page) == [own.slug]
            assert other.name not in page
        assert stranger.get("/api/cart/").json()["count"] == 0
        assert "data-cart-line" not in stranger.get("/cart/").text


# ------------------------------------------------------------------------------------------------
# Invalidation
# ------------------------------------------------------------------------------------------------


def _log_in_to_admin(stack, http):
    login_url = stack.url("/admin/login/")
    form = form_fields(http.get(login_url).text, "login-form")
    form.update(username=ADMIN_USERNAME, password=ADMIN_PASSWORD, next="/admin/")
    response = http.post(login_url, data=form, headers={"Referer": login_url}, allow_redirects=False)
    assert response.status_code == 302, "admin login failed"
    assert "sessionid" in http.cookies


def _listed_price(html, product):
    match = re.search(rf'href="{re.escape(product.path)}".*?<span class="price">€([0-9.]+)</span>', html, re.DOTALL)
    assert match, f"{product.slug} is not on the page"
    return match.group(1)


def test_admin_price_change_is_on_the_very_next_page_view(stack, catalog):
    [product] = catalog.fresh()
    page_url, listing_url = stack.url(product.path), stack.url(f"/categories/{product.category}/")
    visitor = http_session()
    assert f"€{product.price}</p>" in _get_until_hit(visitor, page_url).text
    assert _listed_price(_get_until_hit(visitor, listing_url).text, product) == product.price
    new_price = str(Decimal(product.price) + Decimal("1.11"))

    admin = http_session()
    _log_in_to_admin(stack, admin)
    form_url = stack.url(f"/admin/shop/product/{product.pk}/change/")
    form = form_fields(admin.get(form_url).text, "product_form")
    assert form["price"] == product.price and form["slug"] == product.slug
    form.update(price=new_price, _save="Save")
    # multipart/form-data, as the admin's form (it has a file field) is sent by a browser.
    saved = admin.post(
        form_url,
        files=[(name, (None, value)) for name, value in form.items()],
        headers={"Referer": form_url},
        allow_redirects=False,
    )
    assert saved.status_code == 302, re.findall(r'class="errorlist[^"]*".*?</ul>', saved.text, re.DOTALL)

    page = visitor.get(page_url)
    assert page.headers["X-Cache"] == "MISS"
    assert page.headers["X-Django-Cache"] == "MISS"
    assert f"€{new_price}</p>" in page.text
    listing = visitor.get(listing_url)
    assert listing.headers["X-Cache"] == "MISS"
    assert _listed_price(listing.text, product) == new_price
    # And the new page is what Varnish keeps from now on.
    assert f"€{new_price}</p>" in _get_until_hit(visitor, page_url).text
