"""pagecache/timing.py: every Django answer says how it was made, and nothing per visitor."""

import re

import pytest
from django.test import Client

from tests.factories import CategoryFactory, ProductFactory

RENDERED = re.compile(r'^django;desc="MISS";dur=\d+\.\d, django-db;desc="(\d+) queries"$')


@pytest.fixture
def product(db):
    return ProductFactory(slug="blue-mug", category=CategoryFactory(slug="kitchen"))


def test_a_render_says_miss_with_its_time_and_queries(product):
    timing = Client().get("/products/blue-mug/")["Server-Timing"]
    match = RENDERED.match(timing)
    assert match, timing
    assert int(match.group(1)) >= 2  # last-modified and the product, at least


def test_a_copy_says_hit_and_nothing_more(product):
    Client().get("/products/blue-mug/")
    assert Client().get("/products/blue-mug/")["Server-Timing"] == 'django;desc="HIT"'


def test_two_visitors_get_the_same_server_timing_from_a_copy(product):
    Client().get("/products/blue-mug/")
    alice, bob = Client(), Client()
    alice.cookies["sessionid"] = "a" * 32
    assert alice.get("/products/blue-mug/")["Server-Timing"] == bob.get("/products/blue-mug/")["Server-Timing"]


@pytest.mark.parametrize("url", ["/cart/", "/api/cart/", "/healthz", "/no/such/page/"])
def test_every_other_answer_carries_its_time_and_queries(db, url):
    timing = Client().get(url)["Server-Timing"]
    assert re.match(r'^django;dur=\d+\.\d, django-db;desc="\d+ queries"$', timing), timing


def test_shared_pages_say_how_stale_caches_may_serve_them_and_the_edges_own_lifetime(product, settings):
    response = Client().get("/products/blue-mug/")
    controls = {part.strip() for part in response["Cache-Control"].split(",")}
    assert controls == {
        "public", "max-age=10", f"s-maxage={settings.SHARED_PAGE_SECONDS}",
        "stale-while-revalidate=10", "stale-if-error=21600",
    }
    assert response["Surrogate-Control"] == (
        f"max-age={settings.SHARED_PAGE_SECONDS}, stale-while-revalidate=10, stale-if-error=21600"
    )
    assert response["Vary"] == "Accept-Encoding"
