"""No input gets a 500: the cart API and the cart forms under property-based fuzzing (Hypothesis).

Every API answer is JSON, every refusal a 4xx with a message, and a refused request changes
nothing in the cart.
"""

import json

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import ProductFactory

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

text = st.text(max_size=30)
quantities = st.one_of(
    st.integers(-10**12, 10**12), st.floats(allow_nan=True), st.booleans(), st.none(), text,
    st.sampled_from(["²", "①", "١", "1_0", "+1", " 7 ", "0x10", "1e3", "99", "100", "-0", "٣"]),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=10,
)
bodies = st.one_of(
    st.builds(lambda p, q: {"product": p, "quantity": q}, st.sampled_from(["blue-mug", "gone", ""]) | text, quantities),
    st.dictionaries(text, json_values, max_size=4),
    json_values,
)
paths = st.sampled_from(
    ["/api/cart/", "/api/cart/items/", "/api/cart/items/blue-mug/", "/api/cart/items/gone/", "/api/nope/",
     "/api/cart/items/blue-mug/extra/", "/api/"]
)
methods = st.sampled_from(["GET", "HEAD", "POST", "PATCH", "DELETE", "PUT", "OPTIONS"])


def _encode(body, kind):
    """A request body as JSON, as a form, nested too deep, or as bytes that are neither."""
    if kind == "json":
        return json.dumps(body), "application/json"
    if kind == "form":
        fields = body if isinstance(body, dict) else {"quantity": body}
        return "&".join(f"{k}={v}" for k, v in fields.items()), "application/x-www-form-urlencoded"
    if kind == "deep":
        return "[" * 1500 + "]" * 1500, "application/json"
    return "\x00\xff not json {", kind


@pytest.fixture
def shopper(db):
    ProductFactory(slug="blue-mug", stock=50)
    ProductFactory(slug="gone", is_active=False)
    client = Client()
    client.post("/api/cart/items/", json.dumps({"product": "blue-mug", "quantity": 2}), content_type="application/json")
    return client


def _count(client):
    return client.get("/api/cart/").json()["count"]


@FUZZ
@given(method=methods, path=paths, body=bodies, kind=st.sampled_from(["json", "form", "deep", "text/plain", ""]))
def test_the_api_answers_any_request_in_json_without_a_5xx(shopper, method, path, body, kind):
    before = _count(shopper)
    data, content_type = _encode(body, kind)
    response = shopper.generic(method, path, data, content_type=content_type)
    assert response.status_code < 500, (response.status_code, response.content[:200])
    if method != "HEAD":
        assert response["Content-Type"] == "application/json", response["Content-Type"]
        assert isinstance(response.json(), dict)
    if response.status_code >= 400:
        assert "error" in response.json() if method != "HEAD" else True
        assert _count(shopper) == before


@FUZZ
@given(action=st.sampled_from(["add", "update", "remove", "", "other"]) | text, quantity=quantities,
       product=st.sampled_from(["blue-mug", "gone", ""]) | text)
def test_the_no_javascript_cart_forms_never_answer_5xx(shopper, action, quantity, product):
    before = _count(shopper)
    response = shopper.post("/cart/", {"action": action, "product": product, "quantity": str(quantity)})
    assert response.status_code < 500, (response.status_code, response.content[:200])
    if response.status_code >= 400:
        assert _count(shopper) == before


@pytest.mark.parametrize("quantity", ["²", "①", "٣", "1_0"])
def test_unicode_digits_are_refused_with_a_message(shopper, quantity):
    form = shopper.patch("/api/cart/items/blue-mug/", f"quantity={quantity}",
                         content_type="application/x-www-form-urlencoded")
    assert form.status_code == 400
    assert "whole number" in form.json()["error"]


def test_a_body_nested_too_deep_is_a_400(shopper):
    response = shopper.post("/api/cart/items/", "[" * 1500 + "]" * 1500, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"error": "The request body is nested too deep."}


def test_an_unrouted_api_path_is_a_json_404(shopper):
    response = shopper.get("/api/no/such/thing/")
    assert response.status_code == 404
    assert "error" in response.json()
    assert "no-store" in response["Cache-Control"]
