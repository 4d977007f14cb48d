"""pagecache/middleware.py: what a hit remembers between requests, and when it forgets.

A hit asks Django two questions whose answers depend only on a string of the request (which shared
view serves this path, is this Host allowed) and remembers the answers. These tests prove that what
is remembered never outlives the settings it was computed under, and stays bounded.
"""

import pytest
from django.http import HttpResponse
from django.urls import path

from pagecache import middleware
from tests.factories import CategoryFactory, ProductFactory


def not_shared(request, slug):
    """A view without `shared_page`: this module's URLconf puts it where the store's product page is."""
    return HttpResponse(f"plain {slug}")


# The URLconf of test_a_new_urlconf_is_resolved_afresh: the store's product path, not shared.
urlpatterns = [path("products/<slug:slug>/", not_shared)]


@pytest.fixture
def product(db):
    return ProductFactory(name="Blue Mug", slug="blue-mug", category=CategoryFactory(name="Kitchen", slug="kitchen"))


def test_a_new_urlconf_is_resolved_afresh(client, product, settings):
    assert client.get("/products/blue-mug/")["X-Django-Cache"] == "MISS"
    assert client.get("/products/blue-mug/")["X-Django-Cache"] == "HIT"
    settings.ROOT_URLCONF = __name__
    answer = client.get("/products/blue-mug/")
    assert answer.content == b"plain blue-mug"  # not the stored page of the other URLconf
    assert "X-Django-Cache" not in answer


def test_a_host_is_judged_under_the_allowed_hosts_of_the_moment(client, product, settings):
    settings.ALLOWED_HOSTS = ["shop.example"]
    assert client.get("/products/blue-mug/", HTTP_HOST="shop.example").status_code == 200
    assert client.get("/products/blue-mug/", HTTP_HOST="shop.example")["X-Django-Cache"] == "HIT"
    settings.ALLOWED_HOSTS = ["other.example"]
    assert client.get("/products/blue-mug/", HTTP_HOST="shop.example").status_code == 400


def test_a_forwarded_host_is_checked_when_django_trusts_it(client, product, settings):
    settings.ALLOWED_HOSTS = ["shop.example"]
    client.get("/products/blue-mug/", HTTP_HOST="shop.example")
    settings.USE_X_FORWARDED_HOST = True
    refused = client.get("/products/blue-mug/", HTTP_HOST="shop.example", HTTP_X_FORWARDED_HOST="evil.example")
    assert refused.status_code == 400
    allowed = client.get("/products/blue-mug/", HTTP_HOST="evil.example", HTTP_X_FORWARDED_HOST="shop.example")
    assert allowed["X-Django-Cache"] == "HIT"


def test_made_up_paths_and_hosts_fill_bounded_memories(client, product, settings):
    settings.ALLOWED_HOSTS = ["*"]
    for n in range(middleware.REMEMBERED_PATHS + 50):
        middleware._shared_page_at(middleware.get_resolver(), f"/made-up/{n}/")
    for n in range(middleware.REMEMBERED_HOSTS + 50):
        client.get("/products/blue-mug/", HTTP_HOST=f"host{n}.example")
    assert middleware._shared_page_at.cache_info().currsize == middleware.REMEMBERED_PATHS
    assert middleware._host_header_allowed.cache_info().currsize == middleware.REMEMBERED_HOSTS
    assert client.get("/products/blue-mug/")["X-Django-Cache"] == "HIT"  # still answered from the cache


def test_a_path_that_is_not_a_shared_page_is_passed_on(client, db):
    assert middleware._shared_page_at(middleware.get_resolver(), "/cart/") is None
    assert middleware._shared_page_at(middleware.get_resolver(), "/no/such/page/") is None
    assert client.get("/no/such/page/").status_code == 404
