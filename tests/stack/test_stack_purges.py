"""Purges that reach every copy: each spelling of a page the stack stores, at Varnish and in Django.

A change drops every stored variant, identity and gzip, through Varnish and through Nginx (Django's
own cache): home under any query string, each page of a listing, and a renamed category's old URL.
Spellings that would be copies of their own, which no purge names, are refused instead.
"""

import pytest

from tests.stack.fixtures import http_session

pytestmark = pytest.mark.stack

ENCODINGS = [{"Accept-Encoding": "identity"}, {"Accept-Encoding": "gzip"}]

# A new price on a product that home shows (featured) as well as its listing.
_REPRICE = (
    "from shop.models import Product; p = Product.objects.get(pk={pk}); "
    "p.is_featured = True; p.price = {price!r}; p.save()"
)
_RENAME = (
    "from shop.models import Category; c = Category.objects.get(slug={old!r}); c.slug = {new!r}; c.save()"
)


def _warm(http, url, headers):
    """GET a URL until a cache answers it; return which one said so."""
    for _ in range(3):
        response = http.get(url, headers=headers)
        if response.headers.get("X-Cache") == "HIT" or response.headers.get("X-Django-Cache") == "HIT":
            return response
    raise AssertionError(f"{url} is never served from a cache: {dict(response.headers)}")


def _outcome(response):
    """Which cache answered, as the outermost one says."""
    return response.headers.get("X-Cache") or response.headers.get("X-Django-Cache")


@pytest.mark.parametrize("hop", ["varnish", "nginx"])
def test_a_price_change_shows_in_every_query_spelling_of_home_and_each_listing_page(stack, catalog, hop):
    [product] = catalog.fresh()
    base = stack.varnish_url if hop == "varnish" else stack.nginx_url
    listing = f"/categories/{product.category}/"
    urls = ["/", "/?ref=newsletter", listing, f"{listing}?page=1", f"{listing}?ref=x"]
    http = http_session()
    stack.manage("shell", "-c", _REPRICE.format(pk=product.pk, price="71.17"))
    for url in urls:
        for headers in ENCODINGS:
            assert "€71.17" in _warm(http, base + url, headers).text, (hop, url, headers)
    stack.manage("shell", "-c", _REPRICE.format(pk=product.pk, price="72.27"))
    for url in urls:
        for headers in ENCODINGS:
            page = http.get(base + url, headers=headers)
            assert "€72.27" in page.text, (hop, url, headers, _outcome(page))


@pytest.mark.parametrize("spelling", ["01", "+1", "%201", "1_0", "%D9%A1"])
def test_a_misspelt_page_number_is_refused_not_stored_apart(stack, spelling):
    response = http_session().get(stack.url(f"/categories/kitchen/?page={spelling}"))
    assert response.status_code == 404


def test_a_renamed_category_is_gone_from_its_old_url_at_once(stack, catalog):
    [product] = catalog.fresh()
    old, new = product.category, f"{product.category}-renamed"
    http = http_session()
    for url in (f"/categories/{old}/", f"/categories/{old}/?page=1"):
        for headers in ENCODINGS:
            _warm(http, stack.url(url), headers)
    stack.manage("shell", "-c", _RENAME.format(old=old, new=new))
    try:
        for url in (f"/categories/{old}/", f"/categories/{old}/?page=1"):
            for headers in ENCODINGS:
                assert http.get(stack.url(url), headers=headers).status_code == 404, (url, headers)
        assert http.get(stack.url(f"/categories/{new}/")).status_code == 200
    finally:
        stack.manage("shell", "-c", _RENAME.format(old=new, new=old))
