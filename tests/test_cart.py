"""The cart module, and concurrent adds through real threads and real database connections."""

import json

import pytest
from django.test import Client

from shop import cart as carts
from shop.models import Cart, CartItem
from tests.concurrency import run_together
from tests.factories import CartFactory, ProductFactory


@pytest.mark.django_db
def test_form_quantity_turns_digits_into_int_and_leaves_the_rest():
    assert carts.form_quantity(" 3 ") == 3
    assert carts.form_quantity("1.5") == "1.5"
    assert carts.form_quantity("-2") == "-2"


@pytest.mark.django_db
def test_set_quantity_on_a_new_line_creates_it():
    cart, product = CartFactory(), ProductFactory()
    carts.set_quantity(cart, product.slug, 4)
    assert CartItem.objects.get(cart=cart, product=product).quantity == 4


@pytest.mark.django_db
def test_lines_of_products_withdrawn_from_sale_are_not_counted():
    cart = CartFactory()
    kept, withdrawn = ProductFactory(), ProductFactory()
    carts.add_product(cart, kept.slug, 1)
    carts.add_product(cart, withdrawn.slug, 2)
    withdrawn.is_active = False
    withdrawn.save()
    assert carts.summary(cart)["count"] == 1


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_adds_of_one_product_end_with_quantity_twenty():
    product = ProductFactory(slug="hot-item", stock=100)
    other = ProductFactory(slug="first-item")
    visitor = Client()
    visitor.post("/api/cart/items/", {"product": other.slug})  # starts the session and the cart
    session_cookie = visitor.cookies["sessionid"].value

    def add(_):
        tab = Client()
        tab.cookies["sessionid"] = session_cookie
        response = tab.post("/api/cart/items/", json.dumps({"product": product.slug}), content_type="application/json")
        return response.status_code

    statuses = run_together(20, add)

    assert statuses == [200] * 20
    assert CartItem.objects.filter(product=product).count() == 1
    assert CartItem.objects.get(product=product).quantity == 20


@pytest.mark.django_db(transaction=True)
def test_concurrent_adds_of_different_products_lose_none():
    products = [ProductFactory(slug=f"item-{i}") for i in range(10)]
    visitor = Client()
    visitor.post("/api/cart/items/", {"product": products[0].slug})
    session_cookie = visitor.cookies["sessionid"].value

    def add(i):
        tab = Client()
        tab.cookies["sessionid"] = session_cookie
        body = json.dumps({"product": products[i % 10].slug, "quantity": 2})
        return tab.post("/api/cart/items/", body, content_type="application/json").status_code

    assert run_together(20, add) == [200] * 20
    assert visitor.get("/api/cart/").json()["count"] == 1 + 20 * 2


# ------------------------------------------------------------------------------------------------
# Sessions: a cookie the server did not make never names a cart
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("planted", ["a" * 32, "x" * 200, "short", "not a key at all!"])
@pytest.mark.django_db
def test_a_planted_session_cookie_never_names_a_cart(planted):
    """Session fixation: a victim's browser given someone's chosen key gets a real session instead."""
    ProductFactory(slug="blue-mug")
    victim, attacker = Client(), Client()
    victim.cookies["sessionid"] = attacker.cookies["sessionid"] = planted
    added = victim.post("/api/cart/items/", json.dumps({"product": "blue-mug"}), content_type="application/json")
    assert added.status_code == 200
    new_key = added.cookies["sessionid"].value
    assert new_key != planted and len(new_key) <= 40
    assert not Cart.objects.filter(session_key=planted[:40]).exists()
    assert attacker.get("/api/cart/").json()["count"] == 0
    assert victim.get("/api/cart/").json()["count"] == 1


@pytest.mark.django_db
def test_the_cart_follows_the_session_to_its_new_key_at_login(admin_user):
    ProductFactory(slug="blue-mug")
    visitor = Client()
    body = json.dumps({"product": "blue-mug", "quantity": 3})
    visitor.post("/api/cart/items/", body, content_type="application/json")
    before = visitor.cookies["sessionid"].value
    visitor.force_login(admin_user)
    assert visitor.cookies["sessionid"].value != before  # Django rotated the key
    assert visitor.get("/api/cart/").json()["count"] == 3
    assert Cart.objects.get().session_key == visitor.cookies["sessionid"].value
