"""The cart's JSON API: every answer, every error, and that errors change nothing."""

import json
from decimal import Decimal

import pytest
from django.test import Client

from shop.models import Cart, Product
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def test_new_visitor_gets_an_empty_cart_and_no_session(client):
    response = client.get("/api/cart/")
    assert response.json() == {"count": 0, "items": [], "total": "0.00"}
    assert "sessionid" not in response.cookies
    assert Cart.objects.count() == 0


def test_cart_answer_hands_out_the_csrf_cookie(client):
    assert "csrftoken" in client.get("/api/cart/").cookies


def test_add_defaults_to_one_and_answers_the_cart(api, product):
    response = api.post({"product": "blue-mug"})
    assert response.status_code == 200
    assert response.json() == {
        "count": 1,
        "items": [
            {
                "product": "blue-mug",
                "name": "Blue Mug",
                "url": "/products/blue-mug/",
                "price": "12.50",
                "quantity": 1,
                "subtotal": "12.50",
            }
        ],
        "total": "12.50",
    }


def test_add_same_product_increments_quantity(api, product):
    api.post({"product": "blue-mug", "quantity": 2})
    assert api.post({"product": "blue-mug", "quantity": 3}).json()["count"] == 5


def test_add_accepts_a_form_body(client, product):
    response = client.post("/api/cart/items/", {"product": "blue-mug", "quantity": "2"})
    assert response.json()["count"] == 2


def test_cart_shows_the_price_of_now(api, product):
    api.post({"product": "blue-mug", "quantity": 2})
    Product.objects.filter(pk=product.pk).update(price=Decimal("20.00"))
    assert api.get().json()["total"] == "40.00"


def test_patch_sets_quantity_and_zero_removes(api, product):
    api.post({"product": "blue-mug"})
    assert api.patch("blue-mug", {"quantity": 7}).json()["count"] == 7
    assert api.patch("blue-mug", {"quantity": 0}).json() == {"count": 0, "items": [], "total": "0.00"}


def test_delete_removes_the_line(api, product):
    other = ProductFactory(slug="red-mug")
    api.post({"product": "blue-mug"})
    api.post({"product": other.slug})
    cart = api.delete("blue-mug").json()
    assert [item["product"] for item in cart["items"]] == ["red-mug"]


def test_each_visitor_sees_only_their_own_cart(product):
    alice, bob = Client(), Client()
    alice.post("/api/cart/items/", json.dumps({"product": "blue-mug", "quantity": 2}), content_type="application/json")
    assert alice.get("/api/cart/").json()["count"] == 2
    assert bob.get("/api/cart/").json()["count"] == 0


# Errors: JSON, the right status, and nothing changed.


def _assert_unchanged(api, count=1):
    assert api.get().json()["count"] == count


@pytest.mark.parametrize(
    "quantity", [0, -1, 100, 10**12, 1.5, 2.0, "2", "two", None, True, False, [1], {"n": 1}]
)
def test_bad_quantity_on_add_is_400_and_changes_nothing(api, product, quantity):
    api.post({"product": "blue-mug"})
    response = api.post({"product": "blue-mug", "quantity": quantity})
    assert response.status_code == 400
    assert "Quantity must be a whole number" in response.json()["error"]
    _assert_unchanged(api)


@pytest.mark.parametrize("quantity", [-1, 100, 1.5, "x", None, True])
def test_bad_quantity_on_patch_is_400_and_changes_nothing(api, product, quantity):
    api.post({"product": "blue-mug"})
    response = api.patch("blue-mug", {"quantity": quantity})
    assert response.status_code == 400
    assert "error" in response.json()
    _assert_unchanged(api)


def test_quantity_past_the_line_maximum_is_refused(api, product, settings):
    settings.CART_MAX_QUANTITY = 5
    api.post({"product": "blue-mug", "quantity": 4})
    response = api.post({"product": "blue-mug", "quantity": 2})
    assert response.status_code == 400
    assert response.json() == {"error": "At most 5 of one product fit in a cart."}
    _assert_unchanged(api, count=4)


@pytest.mark.parametrize("slug", ["no-such-product", "x" * 50])
def test_unknown_product_is_404(api, product, slug):
    api.post({"product": "blue-mug"})
    response = api.post({"product": slug})
    assert response.status_code == 404
    assert "No product" in response.json()["error"]
    _assert_unchanged(api)


def test_inactive_product_is_refused(api):
    ProductFactory(slug="retired", is_active=False)
    response = api.post({"product": "retired"})
    assert response.status_code == 404
    _assert_unchanged(api, count=0)


def test_out_of_stock_product_is_refused(api):
    ProductFactory(slug="sold-out", stock=0)
    response = api.post({"product": "sold-out"})
    assert response.status_code == 400
    assert "out of stock" in response.json()["error"]


def test_refused_first_add_makes_no_session_and_no_cart(api):
    response = api.post({"product": "nothing"})
    assert response.status_code == 404
    assert "sessionid" not in response.cookies
    assert Cart.objects.count() == 0


@pytest.mark.parametrize("product_value", [None, 5, ["blue-mug"], "", {"slug": "blue-mug"}])
def test_bad_product_field_is_400(api, product, product_value):
    response = api.post({"product": product_value})
    assert response.status_code == 400
    assert "slug" in response.json()["error"]


@pytest.mark.parametrize(
    "body", [b"{not json", b"[1, 2]", b'"blue-mug"', b"\xff\xfe\x00bad", b"\xc3\x28"],
    ids=["broken", "list", "string", "utf16-garbage", "not-utf8"],
)
def test_malformed_json_body_is_400(client, product, body):
    assert "JSON" in _refused_add(client, body)


def test_empty_body_is_400_naming_the_missing_product(client, product):
    assert _refused_add(client, b"")


def test_oversized_body_is_refused(client, product):
    body = json.dumps({"product": "blue-mug", "padding": "x" * 10_000})
    assert "larger than" in _refused_add(client, body)


def test_unsupported_content_type_is_400(client, product):
    assert "application/json" in _refused_add(client, b"product=blue-mug", content_type="text/plain")


def _refused_add(client, body, content_type="application/json"):
    """POST `body` as an add; assert it is answered 400; return the error it names."""
    response = client.post("/api/cart/items/", body, content_type=content_type)
    assert response.status_code == 400
    return response.json()["error"]


def test_patch_needs_a_quantity(api, product):
    api.post({"product": "blue-mug"})
    response = api.patch("blue-mug", {"qty": 3})
    assert response.status_code == 400
    _assert_unchanged(api)


def test_delete_of_a_product_not_in_the_cart_is_404(api, product):
    response = api.delete("blue-mug")
    assert response.status_code == 404
    assert "not in your cart" in response.json()["error"]


@pytest.mark.parametrize(
    "method, url",
    [("post", "/api/cart/"), ("put", "/api/cart/"), ("get", "/api/cart/items/"),
     ("delete", "/api/cart/items/"), ("get", "/api/cart/items/blue-mug/"), ("post", "/api/cart/items/blue-mug/")],
)
def test_wrong_method_is_json_405_with_allow(client, product, method, url):
    response = getattr(client, method)(url)
    assert response.status_code == 405
    assert "not allowed" in response.json()["error"]
    assert response["Allow"]


def test_post_without_csrf_token_is_json_403(product):
    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/api/cart/items/", json.dumps({"product": "blue-mug"}), content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]
    assert Cart.objects.count() == 0


def test_post_with_csrf_token_from_the_cart_answer_is_accepted(product):
    browser = Client(enforce_csrf_checks=True)
    token = browser.get("/api/cart/").cookies["csrftoken"].value
    response = browser.post(
        "/api/cart/items/", json.dumps({"product": "blue-mug"}), content_type="application/json",
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 200
    assert response.json()["count"] == 1


def test_too_many_form_fields_is_a_clear_400(client, product, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    body = "&".join(f"f{i}=1" for i in range(50)) + "&product=blue-mug"
    response = client.post("/api/cart/items/", body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert "number of GET/POST parameters" in response.json()["error"]
    assert Cart.objects.count() == 0


def test_head_answers_without_a_body_or_a_session(client):
    response = client.head("/api/cart/")
    assert response.status_code == 200
    assert response.content == b""
    assert "sessionid" not in response.cookies


def test_options_is_refused_with_the_allowed_methods(client):
    response = client.options("/api/cart/items/")
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert "Access-Control-Allow-Origin" not in response  # no CORS: the API is same-origin only


def test_unknown_method_is_405_not_500(client):
    response = client.generic("PROPFIND", "/api/cart/")
    assert response.status_code == 405
