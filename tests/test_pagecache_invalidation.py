"""pagecache/invalidation.py: pages dropped by URL or group, in Django's cache and at every edge."""

import pytest
from django.test import Client

from pagecache import invalidation
from tests.factories import CategoryFactory, ProductFactory


@pytest.fixture
def catalog(db):
    kitchen = CategoryFactory(slug="kitchen")
    ProductFactory.create_batch(30, category=kitchen, name="Mug")
    return kitchen


def _outcome(url):
    return Client().get(url).get("X-Django-Cache")


def test_a_url_given_once_drops_every_spelling_of_its_page(catalog):
    spellings = ["/search/?q=mug&page=2", "/search/?page=2&q=mug", "/search/?utm_source=x&q=mug&page=2"]
    Client().get(spellings[0])
    assert [_outcome(url) for url in spellings] == ["HIT"] * 3
    invalidation.drop_urls(["/search/?page=2&q=mug"])
    assert _outcome(spellings[2]) == "MISS"


def test_urls_no_view_answers_are_ignored(db):
    invalidation.drop_urls(["/no/such/page/", "/healthz"])  # nothing stored, nothing raised


def test_a_group_is_dropped_whole(catalog):
    urls = ["/search/?q=mug", "/search/?q=mug&page=2"]
    for url in urls:
        Client().get(url)
    invalidation.drop_group("search")
    assert [_outcome(url) for url in urls] == ["MISS", "MISS"]


def test_drop_everywhere_bans_each_path_with_its_queries(db, settings, fake_varnish):
    url, received = fake_varnish
    settings.VARNISH_URL = [url]
    invalidation.drop_everywhere(["/", "/categories/kitchen/?page=2"], ban_prefixes=["/search/"])
    assert received == [r"^/(\?|$)|^/categories/kitchen/(\?|$)|^/search/"]


def test_too_many_paths_for_one_header_ban_their_common_prefix(db, settings, fake_varnish):
    url, received = fake_varnish
    settings.VARNISH_URL = [url]
    invalidation.drop_everywhere([f"/products/product-number-{n}/" for n in range(500)])
    assert received == ["^/products/product\\-number\\-"]
