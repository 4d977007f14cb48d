"""pagecache/store.py: what survives the cache's own housekeeping."""

from decimal import Decimal

import pytest
from django.core.cache import cache
from django.test import Client

from pagecache import store
from pagecache.keys import ENCODINGS, page_key
from tests.factories import CategoryFactory, ProductFactory


@pytest.fixture
def small_database_cache(settings):
    """The database cache, full at 20 entries: each cull drops the first half of the keys, by key."""
    settings.CACHES = {
        "default": {
            "BACKEND": "pagecache.backends.DatabaseCache",
            "LOCATION": "shop_cache",
            "OPTIONS": {"MAX_ENTRIES": 20, "CULL_FREQUENCY": 2},
        }
    }


@pytest.mark.django_db(transaction=True)
def test_a_culled_group_generation_never_brings_back_pages_dropped_before(
    small_database_cache,
):
    """Django culls the keys that sort first, and "page-generation:search" sorts before every page."""
    product = ProductFactory(name="Linen Towel", price=Decimal("10.00"), category=CategoryFactory())
    cache.clear()  # a cache that has seen no change yet (new, or just flushed): no generation stored
    visitor = Client()
    assert "€10.00" in visitor.get("/search/?q=towel").content.decode()
    product.price = Decimal("20.00")
    product.save()  # drops the search group (a transactional test: on_commit runs now)
    # Keys that sort between the generation and the pages: the cull takes the generation, not them.
    for n in range(25):
        cache.set(f"page-h-filler-{n:02d}", n)
    assert cache.get("page-generation:search") is None  # culled
    page = visitor.get("/search/?q=towel")
    assert "€20.00" in page.content.decode()
    assert page["X-Django-Cache"] == "MISS"


@pytest.mark.django_db
def test_each_hit_gets_a_copy_of_its_own():
    """An entry holds a ready response; what one answer adds on its way out never reaches the next."""
    ProductFactory(name="Blue Mug", slug="blue-mug", category=CategoryFactory())
    visitor = Client()
    visitor.get("/products/blue-mug/")
    first = visitor.get("/products/blue-mug/")
    first["X-Added-Later"] = "by a layer above"
    second = visitor.get("/products/blue-mug/")
    assert second["X-Django-Cache"] == "HIT"
    assert second is not first
    assert "X-Added-Later" not in second
    assert second.content == first.content
    assert second["Content-Length"] == str(len(second.content))


@pytest.mark.django_db
def test_a_hit_answers_a_conditional_get_from_the_stored_validators():
    ProductFactory(name="Blue Mug", slug="blue-mug", category=CategoryFactory())
    visitor = Client()
    page = visitor.get("/products/blue-mug/")
    assert visitor.get("/products/blue-mug/", HTTP_IF_NONE_MATCH=page["ETag"]).status_code == 304
    since = visitor.get("/products/blue-mug/", HTTP_IF_MODIFIED_SINCE=page["Last-Modified"])
    assert since.status_code == 304
    assert visitor.get("/products/blue-mug/", HTTP_IF_NONE_MATCH='"other"').status_code == 200


@pytest.mark.django_db
def test_entries_of_another_shape_are_never_read():
    """A rolling deploy: workers of the last release stored entries of another shape, under their keys."""
    ProductFactory(name="Blue Mug", slug="blue-mug", category=CategoryFactory())
    base = page_key("/products/blue-mug/")
    last_release = {"stored_at": store.now(), "generation": None, "status": 200, "headers": {}, "body": b"old"}
    cache.set_many({f"{base}:{encoding}": last_release for encoding in ENCODINGS}, 60)
    visitor = Client()
    first, second = visitor.get("/products/blue-mug/"), visitor.get("/products/blue-mug/")
    assert (first.status_code, first["X-Django-Cache"], second["X-Django-Cache"]) == (200, "MISS", "HIT")
    assert b"Blue Mug" in second.content
    assert cache.get(f"{base}:identity") == last_release  # left to age out, never read
