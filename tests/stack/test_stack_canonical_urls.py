"""One URL per product page, so that the purge of a price change reaches every copy.

Nginx decodes, merges and resolves a path before Django routes it, and MariaDB compares slugs
without case, so many spellings of /products/<slug>/ would render the product; each would be
a Varnish object of its own that the ban of ^/products/<slug>/ misses (a stale price for the
TTL). deploy/varnish/shop.vcl makes each spelling either the canonical object (merged slashes,
lower-cased catalog paths, the absolute form), a redirect from Django, or a refusal (400:
escaped ASCII, dot segments). This walks the spellings, changes the price, and walks them again.
"""

import re
from decimal import Decimal

import pytest

from tests.stack.edge import get, raw
from tests.stack.fixtures import http_session

pytestmark = pytest.mark.stack


def _variants(product):
    slug = product.slug
    return [
        f"/products/{slug}/",
        f"//products/{slug}/",
        f"/products//{slug}/",
        f"/products/{slug}//",
        f"/products/{slug.upper()}/",
        f"/products/{slug.capitalize()}/",
        f"/Products/{slug}/",
        f"/products/{slug}/?foo=bar",
        f"/products/{slug}/?utm_source=news",
        f"/products/{slug}",
        f"/products/%{ord(slug[0]):02X}{slug[1:]}/",
        f"/products/{slug}%2F",
        f"/products/{slug.replace('-', '%2D', 1)}/",
        f"/products/./{slug}/",
        f"/products/x/../{slug}/",
        f"/products/{slug}/.",
        f"/static/../products/{slug}/",
        f"/static/..%2fproducts/{slug}/",
        f"/products/{slug}/;x=1",
        f"/products/{slug};x=1/",
    ]


def _walk(stack, product):
    """GET every spelling (twice, so what can be cached is); return {path: last raw answer}."""
    answers = {}
    for path in _variants(product):
        for _ in range(2):
            answers[path] = raw(stack.varnish_port, get(path))
    # The absolute form, with a Host header that must not count.
    absolute = f"http://localhost:{stack.varnish_port}/products/{product.slug.upper()}/"
    answers[absolute] = raw(stack.varnish_port, get(absolute, host="evil.example"))
    return answers


def _price(answer):
    match = re.search(rb"\xe2\x82\xac([0-9.]+)</p>", answer.body)
    return match and match.group(1).decode()


def _check(answers, product, price):
    """Every spelling is the page with `price`, a redirect to the canonical URL, or a 4xx."""
    served = []
    for path, answer in answers.items():
        assert answer.status is not None, path
        if answer.status == 200:
            assert _price(answer) == price, (path, _price(answer), price)
            served.append(path)
        elif answer.status in (301, 302, 308):
            assert answer.headers["location"] == product.path, (path, answer.headers)
        else:
            assert 400 <= answer.status < 500, (path, answer)
    return served


def test_a_price_change_shows_on_every_spelling_of_a_product_url(stack, catalog):
    [product] = catalog.fresh()
    before = _walk(stack, product)
    served = _check(before, product, product.price)

    new_price = str(Decimal(product.price) + Decimal("2.22"))
    stack.manage(
        "shell",
        "-c",
        "from decimal import Decimal\n"
        "from shop.models import Product\n"
        f"p = Product.objects.get(pk={product.pk})\n"
        f"p.price = Decimal('{new_price}')\n"
        "p.save()\n",
    )
    after = _walk(stack, product)

    # Each spelling that serves the page shows the new price at once: no copy the purge missed.
    assert _check(after, product, new_price) == served
    # The spellings the browser may really meet serve the canonical object itself.
    for path in (f"//products/{product.slug}/", f"/products/{product.slug.upper()}/"):
        assert after[path].headers["x-cache"] == "HIT", path
    # And nothing but those: escapes and dot segments are refused at the edge.
    assert {before[path].status for path in before if "%" in path or "/." in path} == {400}
    assert served  # the canonical URL, at least
    assert http_session().get(stack.url(product.path)).status_code == 200
