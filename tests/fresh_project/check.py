"""Run inside the fresh project: prove the pattern there, as the guide promises.

    DJANGO_SETTINGS_MODULE=mysite.settings python check.py <step>

Each step exits 0 when it holds and prints what broke otherwise; tests/test_fresh_project.py runs
them in order. The project is the one `django-admin startproject` made, plus the guide's steps and
the small catalog app beside this file.
"""

import sys
from decimal import Decimal

import django
from django.core.management import call_command
from django.db import transaction
from django.test import Client
from django.test.utils import setup_test_environment


def visitor(**cookies):
    client = Client(enforce_csrf_checks=True)  # CSRF checked, as for a browser
    for name, value in cookies.items():
        client.cookies[name] = value
    return client


def shared_html():
    """Two visitors with different cookies: byte-identical HTML, the second from the cache."""
    from catalog.models import Product

    Product.objects.update_or_create(slug="mug", defaults={"name": "Mug", "price": Decimal("12.50")})
    first = visitor(_ga="GA1.1.1", sessionid="x" * 32).get("/products/mug/")
    second = visitor(_ga="GA1.1.2", csrftoken="y" * 32).get("/products/mug/")
    assert first.status_code == second.status_code == 200, (first.status_code, second.status_code)
    assert first.content == second.content, "different HTML for two visitors"
    assert (first["X-Django-Cache"], second["X-Django-Cache"]) == ("MISS", "HIT")
    for answer in (first, second):
        assert not answer.cookies, f"Set-Cookie on a shared page: {answer.cookies}"
        assert "Cookie" not in answer.get("Vary", ""), answer["Vary"]
        assert "s-maxage=60" in answer["Cache-Control"], answer["Cache-Control"]
    assert "€12.50" in first.content.decode()


def own_carts():
    """Each visitor's JSON cart count is their own, with CSRF as a browser sends it."""
    alice, bob = visitor(), visitor()
    for client, quantity in ((alice, 2), (bob, 5)):
        token = client.get("/api/cart/").cookies["csrftoken"].value
        refused = client.post("/api/cart/items/", {"product": "mug"}, content_type="application/json")
        assert refused.status_code == 403 and "error" in refused.json(), refused.content  # no token
        added = client.post(
            "/api/cart/items/", {"product": "mug", "quantity": quantity}, content_type="application/json",
            headers={"X-CSRFToken": token},
        )
        assert added.json()["count"] == quantity, added.content
    assert alice.get("/api/cart/").json()["count"] == 2
    assert bob.get("/api/cart/").json()["count"] == 5


def price_change():
    """A price change is on the next request (the guide's invalidation template, on commit)."""
    from catalog.models import Product

    visitor().get("/products/mug/")
    assert visitor().get("/products/mug/")["X-Django-Cache"] == "HIT"
    with transaction.atomic():
        product = Product.objects.get(slug="mug")
        product.price = Decimal("99.00")
        product.save()
    page = visitor().get("/products/mug/")
    assert "€99.00" in page.content.decode(), "the old price is still served"


def audit():
    """The audit passes (exit 0) on the shared product page."""
    call_command("cache_audit", "/products/mug/")


def guard_in_debug():
    """With DEBUG on, a shared page that renders a CSRF token raises the guard's error."""
    from django.conf import settings
    from django.core.cache import cache

    from pagecache.guard import VisitorStateError

    settings.DEBUG = True
    cache.clear()  # the copy stored before the template changed would be served, not rendered
    try:
        Client().get("/products/mug/")
    except VisitorStateError as error:
        print(error)
        assert "csrf" in error.reasons, error.reasons
        return
    raise AssertionError("the page rendered a CSRF token and nothing was raised")


if __name__ == "__main__":
    django.setup()
    setup_test_environment()  # the test client's host, and nothing else of the test runner
    globals()[sys.argv[1]]()
