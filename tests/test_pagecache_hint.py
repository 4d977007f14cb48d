"""The cart hint (pagecache/hint.py): every private answer that changes or shows the cart sets it
or deletes it, with the session's lifetime; shared pages never set it and ignore it."""

import json
from datetime import timedelta
from email.utils import parsedate_to_datetime

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.utils import timezone

from pagecache.hint import clear_hint, hint_value, set_hint
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db

HINT = "cart_hint"
SHARED_URLS = ["/", "/products/blue-mug/", "/search/?q=mug"]


@pytest.fixture
def clock(monkeypatch):
    """Freeze the hint's clock at a known Unix time."""
    monkeypatch.setattr("pagecache.hint.time.time", lambda: 1_800_000_000.4)
    return 1_800_000_000


@pytest.fixture
def shopper(api, product):
    """A visitor (the `api` fixture's client) with 2 Blue Mugs in the cart."""
    api.post({"product": "blue-mug", "quantity": 2})
    return api


def _hint(response):
    """Return the count a response's hint says, 0 if it deletes it, None if it leaves it alone."""
    if HINT not in response.cookies:
        return None
    morsel = response.cookies[HINT]
    if morsel["max-age"] == 0:
        assert morsel.value == ""
        return 0
    count, refresh_after = morsel.value.split(".")
    assert refresh_after.isdigit()
    return int(count)


# ------------------------------------------------------------------------------------------------
# The cookie
# ------------------------------------------------------------------------------------------------


def test_value_is_the_count_and_when_to_check_it(settings):
    assert hint_value(3, 1_800_000_000.9) == "3.1800000600"
    settings.PAGECACHE_HINT_REFRESH_SECONDS = 60
    assert hint_value(12, 1_800_000_000) == "12.1800000060"


def test_cookie_is_readable_by_scripts_lax_and_lives_as_long_as_the_session(shopper, clock):
    response = shopper.get()
    hint, session = response.cookies[HINT], response.cookies["sessionid"]

    assert hint.value == "2.1800000600"
    assert hint["httponly"] == ""
    assert hint["samesite"] == "Lax"
    assert hint["path"] == "/"
    assert hint["secure"] == ""
    # Saved with the same answer, the session's cookie leaves with the same lifetime.
    assert hint["max-age"] == session["max-age"] == 60 * 60 * 24 * 14
    gap = parsedate_to_datetime(hint["expires"]) - parsedate_to_datetime(session["expires"])
    assert abs(gap.total_seconds()) <= 1


def test_every_cart_answer_saves_the_session_so_both_end_together(shopper, client):
    key = client.cookies["sessionid"].value
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() + timedelta(seconds=30))
    response = shopper.get()
    expires = Session.objects.get(session_key=key).expire_date
    assert expires > timezone.now() + timedelta(seconds=response.cookies[HINT]["max-age"] - 60)
    assert response.cookies["sessionid"].value == key


def test_cookie_is_secure_when_the_session_cookie_is(shopper, settings):
    settings.SESSION_COOKIE_SECURE = True
    assert shopper.get().cookies[HINT]["secure"] is True


def test_cookie_name_is_a_setting(shopper, settings):
    settings.PAGECACHE_HINT_COOKIE = "basket"
    response = shopper.get()
    assert response.cookies["basket"].value.startswith("2.")
    assert HINT not in response.cookies


def _request_with(session):
    request = RequestFactory().get("/api/cart/")
    request.session = session
    return request


def test_session_that_ends_at_browser_close_gives_a_hint_that_does_too():
    session = SessionStore()
    session.set_expiry(0)
    session.save()
    hint = set_hint(_request_with(session), HttpResponse(), 4).cookies[HINT]
    assert hint.value.startswith("4.")
    assert (hint["max-age"], hint["expires"]) == ("", "")


def test_no_hint_without_a_live_session():
    gone = SessionStore(session_key="x" * 32)  # expired, or deleted by another request
    assert set_hint(_request_with(gone), HttpResponse(), 4).cookies[HINT]["max-age"] == 0
    assert set_hint(_request_with(SessionStore()), HttpResponse(), 4).cookies[HINT]["max-age"] == 0
    assert set_hint(RequestFactory().get("/"), HttpResponse(), 4).cookies[HINT]["max-age"] == 0


def test_clearing_deletes_the_cookie_where_it_was_set():
    hint = clear_hint(HttpResponse()).cookies[HINT]
    assert (hint.value, hint["max-age"], hint["path"], hint["samesite"]) == ("", 0, "/", "Lax")


# ------------------------------------------------------------------------------------------------
# Every private answer that changes or shows the cart
# ------------------------------------------------------------------------------------------------


def test_api_get_without_a_cart_deletes_the_hint_and_makes_no_session(client):
    response = client.get("/api/cart/")
    assert _hint(response) == 0
    assert "sessionid" not in response.cookies


def test_api_get_with_a_cart_sets_the_hint(shopper):
    assert _hint(shopper.get()) == 2


def test_api_add_sets_the_hint(api, product):
    assert _hint(api.post({"product": "blue-mug", "quantity": 3})) == 3
    assert _hint(api.post({"product": "blue-mug"})) == 4


def test_api_add_as_a_form_sets_the_hint(client, product):
    assert _hint(client.post("/api/cart/items/", {"product": "blue-mug", "quantity": "2"})) == 2


def test_api_patch_sets_the_hint_and_zero_deletes_it(shopper):
    assert _hint(shopper.patch("blue-mug", {"quantity": 5})) == 5
    assert _hint(shopper.patch("blue-mug", {"quantity": 0})) == 0


def test_api_delete_sets_the_hint_to_what_is_left(shopper):
    ProductFactory(slug="red-mug")
    shopper.post({"product": "red-mug"})
    assert _hint(shopper.delete("blue-mug")) == 1
    assert _hint(shopper.delete("red-mug")) == 0


def test_refused_api_request_leaves_the_hint_alone(shopper):
    assert _hint(shopper.post({"product": "no-such-product"})) is None
    assert _hint(shopper.patch("blue-mug", {"quantity": -1})) is None


def test_cart_page_sets_the_hint_or_deletes_it(client, product):
    assert _hint(client.get("/cart/")) == 0
    client.post("/api/cart/items/", json.dumps({"product": "blue-mug", "quantity": 2}), content_type="application/json")
    assert _hint(client.get("/cart/")) == 2
    assert _hint(client.get("/cart/?add=blue-mug")) == 2  # the no-JavaScript confirm page


def test_forms_without_javascript_set_the_hint(client, product):
    assert _hint(client.post("/cart/", {"action": "add", "product": "blue-mug", "quantity": "3"})) == 3
    assert _hint(client.post("/cart/", {"action": "update", "product": "blue-mug", "quantity": "5"})) == 5
    assert _hint(client.post("/cart/", {"action": "update", "product": "blue-mug", "quantity": "x"})) == 5
    assert _hint(client.post("/cart/", {"action": "remove", "product": "blue-mug"})) == 0
    assert _hint(client.post("/cart/", {"action": "remove", "product": "blue-mug"})) == 0


def test_form_update_to_zero_deletes_the_hint(client, product):
    client.post("/cart/", {"action": "add", "product": "blue-mug", "quantity": "3"})
    assert _hint(client.post("/cart/", {"action": "update", "product": "blue-mug", "quantity": "0"})) == 0


def test_hint_counts_only_products_still_for_sale(shopper):
    withdrawn = ProductFactory(slug="old-mug")
    shopper.post({"product": "old-mug", "quantity": 3})
    withdrawn.is_active = False
    withdrawn.save()
    assert _hint(shopper.get()) == 2
    assert shopper.get().json()["count"] == 2


# ------------------------------------------------------------------------------------------------
# Shared pages never set it, and ignore it
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", SHARED_URLS)
def test_shared_pages_never_set_the_hint(shopper, client, url):
    for _ in range(2):  # the render and the cached copy
        response = client.get(url)
        assert response.status_code == 200
        assert HINT not in response.cookies


@pytest.mark.parametrize("url", SHARED_URLS)
def test_shared_page_with_the_hint_cookie_is_the_same_cached_page(product, url):
    first = Client().get(url)
    visitor = Client()
    visitor.cookies[HINT] = "2.1800000600"
    second = visitor.get(url)
    assert (first["X-Django-Cache"], second["X-Django-Cache"]) == ("MISS", "HIT")
    assert second.content == first.content
    assert second.cookies == {} or not any(second.cookies.values())


def test_the_badge_tells_the_script_the_hint_cookies_name_from_the_setting(db, settings):
    settings.PAGECACHE_HINT_COOKIE = "basket"
    assert 'data-cart-hint-cookie="basket"' in Client().get("/").content.decode()
