"""Reliability, through Varnish, Nginx and uWSGI: keys nobody can poison, sessions nobody can plant,
and no input that gets a 500."""

import pytest

from tests.stack.fixtures import http_session

pytestmark = pytest.mark.stack


@pytest.mark.parametrize("hop", ["varnish", "nginx"])
def test_a_search_for_a_forged_query_never_answers_the_real_one(stack, catalog, hop):
    """`?q=X%26page%3D1` searches for the text "X&page=1" (nothing); it must not be stored as `?q=X&page=1`."""
    [product] = catalog.fresh()
    word = product.name.split()[0]
    base = stack.varnish_url if hop == "varnish" else stack.nginx_url
    http = http_session()
    forged = http.get(f"{base}/search/?q={word}%26page%3D1")
    assert "0 results" in forged.text
    real = http.get(f"{base}/search/?q={word}&page=1")
    assert real.status_code == 200
    assert "0 results" not in real.text
    assert product.name in real.text or "result" in real.text


def test_a_planted_session_cookie_gets_a_new_session_and_names_no_cart(stack, catalog):
    [product] = catalog.fresh()
    planted = "attacker-chose-this-key-0123456789"
    victim = http_session()
    victim.cookies.set("sessionid", planted)
    victim.get(stack.url("/api/cart/"))  # the CSRF cookie, as before a first add
    added = victim.post(
        stack.url("/api/cart/items/"),
        json={"product": product.slug, "quantity": 1},
        headers={"X-CSRFToken": victim.cookies["csrftoken"], "Origin": stack.varnish_url},
    )
    assert added.status_code == 200, added.text
    assert added.cookies["sessionid"] != planted
    attacker = http_session()
    attacker.cookies.set("sessionid", planted)
    assert attacker.get(stack.url("/api/cart/")).json()["count"] == 0


@pytest.mark.parametrize(
    "body, content_type",
    [("[" * 1500 + "]" * 1500, "application/json"), ("quantity=%C2%B2&product=x", "application/x-www-form-urlencoded")],
    ids=["json-nested-too-deep", "superscript-two"],
)
def test_bad_input_is_a_json_4xx_through_the_stack(stack, body, content_type):
    http = http_session()
    http.get(stack.url("/api/cart/"))
    response = http.post(
        stack.url("/api/cart/items/"), data=body.encode(),
        headers={"Content-Type": content_type, "X-CSRFToken": http.cookies["csrftoken"], "Origin": stack.varnish_url},
    )
    assert 400 <= response.status_code < 500, response.text
    assert "error" in response.json()


def test_an_unrouted_api_path_is_a_json_404_through_the_stack(stack):
    response = http_session().get(stack.url("/api/no/such/thing/"))
    assert response.status_code == 404
    assert "error" in response.json()
