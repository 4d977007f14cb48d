"""The cache contract (docs/design.md), proven through Django's test client and a live server.

These tests run on whatever CACHE_URL says: `make test` runs them on the database cache and again
on Redis.
"""

import gzip
import json
import logging
import threading
from decimal import Decimal

import pytest
import requests
from django.conf import settings as django_settings
from django.core.cache import cache
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

import shop.views
from pagecache import decorators, keys, store
from shop import invalidation
from tests.concurrency import run_together
from tests.factories import CategoryFactory, ProductFactory

# Django's admin marks its own views never_cache: not ours to decorate, private all the same.
NOT_OURS_TO_DECORATE = ("admin/",)
SHARED_URLS = ["/", "/categories/kitchen/", "/categories/kitchen/?page=2", "/products/blue-mug/", "/search/?q=mug"]
USES_DB_CACHE = django_settings.CACHES["default"]["BACKEND"].endswith("DatabaseCache")


@pytest.fixture
def catalog(db):
    kitchen = CategoryFactory(name="Kitchen", slug="kitchen")
    ProductFactory.create_batch(30, category=kitchen)
    return ProductFactory(name="Blue Mug", slug="blue-mug", category=kitchen, is_featured=True)


@pytest.fixture
def renders(monkeypatch):
    """Count the templates the store's views render (one per page render)."""
    counted = []
    real_render = shop.views.render
    lock = threading.Lock()

    def counting_render(request, template_name, *args, **kwargs):
        with lock:
            counted.append(template_name)
        return real_render(request, template_name, *args, **kwargs)

    monkeypatch.setattr(shop.views, "render", counting_render)
    return counted


@pytest.fixture
def clock(monkeypatch):
    """A clock the test moves by hand: `clock.now += 61`."""

    class Clock:
        now = 1_800_000_000.0

    monkeypatch.setattr(store, "now", lambda: Clock.now)
    return Clock


def _visitor_with_cart():
    visitor = Client()
    body = json.dumps({"product": "blue-mug", "quantity": 2})
    visitor.post("/api/cart/items/", body, content_type="application/json")
    assert "sessionid" in visitor.cookies
    return visitor


# ------------------------------------------------------------------------------------------------
# Every URL has a class
# ------------------------------------------------------------------------------------------------


def test_every_url_pattern_declares_a_cache_class():
    unclassified = []
    for pattern in get_resolver().url_patterns:
        if isinstance(pattern, URLResolver):
            if str(pattern.pattern) not in NOT_OURS_TO_DECORATE:
                unclassified.append(str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            cache_class = getattr(pattern.callback, "cache_class", None)
            if cache_class not in (decorators.SHARED, decorators.PRIVATE, decorators.HEALTH):
                unclassified.append(str(pattern.pattern))
    assert unclassified == []


# ------------------------------------------------------------------------------------------------
# Shared pages stay shared
# ------------------------------------------------------------------------------------------------


def _assert_shared(response):
    assert response.status_code == 200
    assert "Cookie" not in response.get("Vary", "")
    assert "Accept-Encoding" in response["Vary"]
    assert response.cookies == {} or not any(response.cookies.values())
    control = response["Cache-Control"]
    assert "public" in control
    assert f"s-maxage={django_settings.SHARED_PAGE_SECONDS}" in control
    assert "max-age=" in control.replace("s-maxage", "")
    body = response.content.decode()
    assert "csrfmiddlewaretoken" not in body
    assert "sessionid" not in body


@pytest.mark.parametrize("url", SHARED_URLS)
def test_shared_page_for_anonymous_visitor(client, catalog, url):
    _assert_shared(client.get(url))
    _assert_shared(client.get(url))  # the cached copy too


@pytest.mark.parametrize("url", SHARED_URLS)
def test_shared_page_for_visitor_with_a_cart(catalog, url):
    _assert_shared(_visitor_with_cart().get(url))


@pytest.mark.parametrize("url", SHARED_URLS)
def test_shared_page_for_logged_in_staff(admin_client, catalog, url):
    response = admin_client.get(url)
    _assert_shared(response)
    assert "admin" not in response.content.decode().lower()


@pytest.mark.parametrize(
    "method, url",
    [("get", "/cart/"), ("get", "/api/cart/"), ("post", "/api/cart/items/"), ("delete", "/api/cart/items/blue-mug/")],
)
def test_private_responses_are_private_no_store_and_vary_on_cookie(catalog, method, url):
    response = getattr(_visitor_with_cart(), method)(url)
    assert "private" in response["Cache-Control"]
    assert "no-store" in response["Cache-Control"]
    assert "Cookie" in response["Vary"]


def test_admin_is_private(admin_client):
    response = admin_client.get("/admin/")
    assert response.status_code == 200
    assert "private" in response["Cache-Control"]
    assert "no-store" in response["Cache-Control"]


def test_healthz_is_never_stored(client, db):
    assert "no-store" in client.get("/healthz")["Cache-Control"]


@pytest.mark.parametrize(
    "touch",
    [
        lambda request: request.session.get("anything"),
        # A nonce is per response: stored, every visitor would get the same one, known in advance.
        lambda request: str(request.csp_nonce),  # what {{ request.csp_nonce }} in a template does
    ],
    ids=["session", "csp-nonce"],
)
def test_shared_page_that_touches_visitor_state_is_not_cached(client, catalog, monkeypatch, caplog, touch):
    """The guard: a template or view that reads the session or a nonce makes the page private, loudly."""
    real_render = shop.views.render

    def render_touching(request, *args, **kwargs):
        touch(request)
        return real_render(request, *args, **kwargs)

    monkeypatch.setattr(shop.views, "render", render_touching)
    with caplog.at_level(logging.ERROR, logger="pagecache"):
        first = client.get("/products/blue-mug/")
        second = client.get("/products/blue-mug/")
    assert "private" in first["Cache-Control"]
    assert "X-Django-Cache" not in second  # rendered again, never served from the cache
    assert "touched visitor state, so it is not cached" in caplog.text


# ------------------------------------------------------------------------------------------------
# Same HTML, own cart; hits cost no catalog query
# ------------------------------------------------------------------------------------------------


def test_two_visitors_get_identical_html_and_their_own_cart(catalog):
    alice, bob = _visitor_with_cart(), Client()
    bob.post("/api/cart/items/", json.dumps({"product": "blue-mug", "quantity": 5}), content_type="application/json")
    first, second = alice.get("/products/blue-mug/"), bob.get("/products/blue-mug/")
    assert first.content == second.content
    assert (first["X-Django-Cache"], second["X-Django-Cache"]) == ("MISS", "HIT")
    assert alice.get("/api/cart/").json()["count"] == 2
    assert bob.get("/api/cart/").json()["count"] == 5


@pytest.mark.parametrize("url", SHARED_URLS)
def test_cache_hit_runs_no_catalog_query(client, catalog, url, django_assert_num_queries, renders):
    client.get(url)
    # The database cache reads its table once; Redis, memcached and locmem need no query at all.
    with django_assert_num_queries(1 if USES_DB_CACHE else 0):
        response = client.get(url)
    assert response["X-Django-Cache"] == "HIT"
    assert len(renders) == 1


def test_cache_hit_with_locmem_runs_no_query_at_all(client, catalog, settings, django_assert_num_queries):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    client.get("/products/blue-mug/")
    with django_assert_num_queries(0):
        assert client.get("/products/blue-mug/")["X-Django-Cache"] == "HIT"


def test_uncached_product_page_needs_two_catalog_queries(client, catalog):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert client.get("/products/blue-mug/").status_code == 200
    catalog_queries = [q["sql"] for q in queries if "shop_cache" not in q["sql"] and "SAVEPOINT" not in q["sql"]]
    # Last-Modified (product and category times), then the product with its category.
    assert len(catalog_queries) == 2, catalog_queries


# ------------------------------------------------------------------------------------------------
# Invalidation
# ------------------------------------------------------------------------------------------------


def test_price_change_is_visible_on_the_next_request(client, catalog, django_capture_on_commit_callbacks):
    assert "€12.50" in client.get("/products/blue-mug/").content.decode()
    for url in ("/", "/categories/kitchen/", "/search/?q=blue"):
        client.get(url)
    with django_capture_on_commit_callbacks(execute=True):
        catalog.price = Decimal("99.00")
        catalog.save()
    for url in ("/products/blue-mug/", "/", "/search/?q=blue"):
        response = client.get(url)
        assert response["X-Django-Cache"] == "MISS", url
        assert "€99.00" in response.content.decode(), url


def test_listing_pages_drop_a_changed_product(client, catalog, django_capture_on_commit_callbacks):
    pages = [client.get(f"/categories/kitchen/?page={n}").content.decode() for n in (1, 2)]
    assert any("Blue Mug" in page for page in pages)
    with django_capture_on_commit_callbacks(execute=True):
        catalog.is_active = False
        catalog.save()
    pages = [client.get(f"/categories/kitchen/?page={n}").content.decode() for n in (1, 2)]
    assert not any("Blue Mug" in page for page in pages)
    assert client.get("/products/blue-mug/").status_code == 404


def test_deleted_product_is_gone_at_once(client, catalog, django_capture_on_commit_callbacks):
    client.get("/products/blue-mug/")
    with django_capture_on_commit_callbacks(execute=True):
        catalog.delete()
    assert client.get("/products/blue-mug/").status_code == 404


def test_category_rename_shows_on_its_product_pages(client, catalog, django_capture_on_commit_callbacks):
    client.get("/products/blue-mug/")
    with django_capture_on_commit_callbacks(execute=True):
        catalog.category.name = "Cookware"
        catalog.category.save()
    assert "Cookware" in client.get("/products/blue-mug/").content.decode()


def test_nothing_is_dropped_before_the_transaction_commits(client, catalog, django_capture_on_commit_callbacks):
    client.get("/products/blue-mug/")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        catalog.price = Decimal("1.00")
        catalog.save()
    assert client.get("/products/blue-mug/")["X-Django-Cache"] == "HIT"
    assert len(callbacks) == 1


def _admin_form(product, **changes):
    data = {
        "category": product.category_id, "name": product.name, "slug": product.slug,
        "description": product.description, "price": str(product.price), "stock": product.stock,
        "is_active": "on", "_save": "Save",
    }
    data.update(changes)
    return data


@pytest.mark.django_db(transaction=True)
def test_admin_price_change_is_visible_on_the_next_request(admin_user):
    kitchen = CategoryFactory(slug="kitchen")
    product = ProductFactory(slug="blue-mug", category=kitchen)
    staff, visitor = Client(), Client()
    staff.force_login(admin_user)
    visitor.get("/products/blue-mug/")
    response = staff.post(f"/admin/shop/product/{product.pk}/change/", _admin_form(product, price="77.70"))
    assert response.status_code == 302
    page = visitor.get("/products/blue-mug/")
    assert page["X-Django-Cache"] == "MISS"
    assert "€77.70" in page.content.decode()


def test_product_save_bans_its_pages_in_every_varnish(
    catalog, settings, fake_varnish, django_capture_on_commit_callbacks
):
    url, received = fake_varnish
    settings.VARNISH_URL = [url, url]
    with django_capture_on_commit_callbacks(execute=True):
        catalog.save()
    assert len(received) == 2
    assert r"^/products/blue\-mug/" in received[0]
    assert r"^/categories/kitchen/" in received[0]
    assert r"^/(\?|$)" in received[0]


def test_unreachable_varnish_is_logged_not_raised(
    admin_client, catalog, settings, caplog, django_capture_on_commit_callbacks
):
    settings.VARNISH_URL = ["http://127.0.0.1:9"]  # nothing listens on the discard port
    with caplog.at_level(logging.WARNING, logger="pagecache"):
        with django_capture_on_commit_callbacks(execute=True):
            response = admin_client.post(
                f"/admin/shop/product/{catalog.pk}/change/", _admin_form(catalog, price="5.00")
            )
    assert response.status_code == 302
    assert "Varnish ban" in caplog.text
    assert "€5.00" in admin_client.get("/products/blue-mug/").content.decode()


# ------------------------------------------------------------------------------------------------
# TTL, Age and staleness, with a fake clock
# ------------------------------------------------------------------------------------------------


def test_hit_carries_its_age_so_caches_in_front_do_not_add_a_ttl(client, catalog, clock):
    client.get("/products/blue-mug/")
    clock.now += 25
    response = client.get("/products/blue-mug/")
    assert response["X-Django-Cache"] == "HIT"
    assert response["Age"] == "25"


def test_worst_case_staleness_without_purge_is_one_ttl(client, catalog, clock, renders):
    from shop.models import Product

    ttl = django_settings.SHARED_PAGE_SECONDS
    client.get("/products/blue-mug/")
    Product.objects.filter(pk=catalog.pk).update(price=Decimal("3.33"))  # no signal: no purge
    clock.now += ttl - 1
    assert "€12.50" in client.get("/products/blue-mug/").content.decode()
    clock.now += 2
    fresh = client.get("/products/blue-mug/")
    assert "€3.33" in fresh.content.decode()
    assert fresh["X-Django-Cache"] == "MISS"
    assert len(renders) == 2


# ------------------------------------------------------------------------------------------------
# Conditional GET
# ------------------------------------------------------------------------------------------------


def test_matching_etag_gets_304_from_the_cache_without_rendering(client, catalog, renders):
    etag = client.get("/products/blue-mug/")["ETag"]
    response = client.get("/products/blue-mug/", headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.content == b""
    assert len(renders) == 1


def test_if_modified_since_gets_304_without_rendering_on_a_miss(client, catalog, renders):
    last_modified = client.get("/products/blue-mug/")["Last-Modified"]
    cache.clear()
    response = client.get("/products/blue-mug/", headers={"If-Modified-Since": last_modified})
    assert response.status_code == 304
    assert len(renders) == 1


# ------------------------------------------------------------------------------------------------
# Vary: Accept-Encoding, handled
# ------------------------------------------------------------------------------------------------


def test_gzip_and_identity_variants_are_cached_apart(client, catalog, renders):
    zipped = client.get("/products/blue-mug/", headers={"Accept-Encoding": "gzip, deflate, br"})
    plain = client.get("/products/blue-mug/", headers={"Accept-Encoding": "identity"})
    zipped_again = client.get("/products/blue-mug/", headers={"Accept-Encoding": "gzip"})
    assert zipped["Content-Encoding"] == "gzip"
    assert "Content-Encoding" not in plain
    assert gzip.decompress(zipped.content) == plain.content
    assert zipped_again.content == zipped.content
    assert (plain["X-Django-Cache"], zipped_again["X-Django-Cache"]) == ("HIT", "HIT")
    assert zipped["ETag"] != plain["ETag"]
    assert len(renders) == 1


def test_gzip_refused_with_q_zero_gets_identity(client, catalog):
    response = client.get("/products/blue-mug/", headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "Content-Encoding" not in response


def test_tracking_parameters_share_the_clean_page(client, catalog, renders):
    client.get("/products/blue-mug/")
    response = client.get("/products/blue-mug/?utm_source=news&fbclid=abc")
    assert response["X-Django-Cache"] == "HIT"
    assert len(renders) == 1


# ------------------------------------------------------------------------------------------------
# Faults: the cache down, the table missing
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "backend",
    [
        {"BACKEND": "pagecache.backends.RedisCache", "LOCATION": "redis://127.0.0.1:9/0"},
        {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "no_such_cache_table"},
    ],
    ids=["redis-down", "table-missing"],
)
def test_pages_render_when_the_cache_is_broken(client, catalog, settings, caplog, backend):
    settings.CACHES = {"default": backend}
    with caplog.at_level(logging.WARNING, logger="pagecache"):
        for url in SHARED_URLS:
            assert client.get(url).status_code == 200
    assert "cache unavailable" in caplog.text


# ------------------------------------------------------------------------------------------------
# No stampede: one render per expiry, however many requests wait
# ------------------------------------------------------------------------------------------------


def _hammer(url, count=32):
    return run_together(count, lambda _: requests.get(url, timeout=30).status_code)


@pytest.mark.django_db(transaction=True)
def test_expired_hot_page_is_rendered_once_under_32_concurrent_requests(live_server, clock, renders):
    ProductFactory(slug="hot", category=CategoryFactory(slug="kitchen"))
    url = live_server.url + "/products/hot/"
    assert requests.get(url, timeout=10).status_code == 200
    clock.now += django_settings.SHARED_PAGE_SECONDS + 1  # the entry has expired
    renders.clear()
    assert _hammer(url) == [200] * 32
    assert len(renders) <= 2, renders


@pytest.mark.django_db(transaction=True)
def test_cold_hot_page_is_rendered_once_under_32_concurrent_requests(live_server, renders):
    ProductFactory(slug="hot", category=CategoryFactory(slug="kitchen"))
    url = live_server.url + "/products/hot/"
    assert _hammer(url) == [200] * 32
    assert len(renders) <= 2, renders


# ------------------------------------------------------------------------------------------------
# Django's own rules, on this project's policy: a view that declines sharing is never stored
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header, value",
    [
        ("Cache-Control", "private"),
        ("Cache-Control", "PRIVATE, max-age=60"),
        ("Cache-Control", "No-Store"),
        ("Cache-Control", "no-cache"),
        ("Vary", "*"),
        ("Vary", "Accept-Encoding, *"),
    ],
)
def test_view_that_declines_sharing_is_never_stored(client, catalog, monkeypatch, renders, header, value):
    real_render = shop.views.render

    def render_declining(request, *args, **kwargs):
        response = real_render(request, *args, **kwargs)
        response[header] = value
        return response

    monkeypatch.setattr(shop.views, "render", render_declining)
    first, second = client.get("/products/blue-mug/"), client.get("/products/blue-mug/")
    assert "X-Django-Cache" not in first
    assert "X-Django-Cache" not in second
    assert "public" not in first.get("Cache-Control", "")


def test_view_that_sets_a_cookie_is_never_stored(client, catalog, monkeypatch):
    real_render = shop.views.render

    def render_with_cookie(request, *args, **kwargs):
        response = real_render(request, *args, **kwargs)
        response.set_cookie("tracking", "1")
        return response

    monkeypatch.setattr(shop.views, "render", render_with_cookie)
    client.get("/products/blue-mug/")
    second = Client().get("/products/blue-mug/")
    assert "X-Django-Cache" not in second
    assert "private" in second["Cache-Control"]


@pytest.mark.parametrize("caught_up, drops", [(True, 1), (False, 2)])
def test_pages_are_dropped_again_when_the_replica_is_behind(catalog, monkeypatch, caught_up, drops):
    """A replica behind the primary may be read until every process skips it: drop twice then."""
    import time

    calls = []
    monkeypatch.setattr(invalidation.replicas, "wait_for_replica", lambda: caught_up)
    monkeypatch.setattr(invalidation.replicas, "replica_settle_seconds", lambda: 0.05)
    monkeypatch.setattr(invalidation, "_drop", lambda urls: calls.append(urls[0]))
    invalidation.invalidate_product(catalog)
    time.sleep(0.3)
    assert calls == ["/products/blue-mug/"] * drops


# ------------------------------------------------------------------------------------------------
# The fast path: a fresh hit stops at SharedPageMiddleware, carrying every header of its render
# ------------------------------------------------------------------------------------------------


class InnerLayer:
    """Stands for the middleware below SharedPageMiddleware: counts what reaches it, tags answers."""

    seen = []

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        type(self).seen.append(request.path)
        response = self.get_response(request)
        response["X-Inner-Layer"] = "ran"
        if getattr(type(self), "fail_on_the_way_out", False):
            raise RuntimeError("a layer below the cache failed")
        return response


@pytest.fixture
def inner_layer(settings):
    InnerLayer.seen = []
    InnerLayer.fail_on_the_way_out = False
    below = settings.MIDDLEWARE.index("pagecache.middleware.SharedPageMiddleware") + 1
    settings.MIDDLEWARE = [*settings.MIDDLEWARE[:below], "tests.test_caching.InnerLayer", *settings.MIDDLEWARE[below:]]
    return InnerLayer


def _page_is_locked(url):
    return store.is_locked(keys.page_key(url))


def test_fresh_hit_is_answered_before_the_middleware_below_runs(client, catalog, inner_layer, renders):
    miss, hit = client.get("/products/blue-mug/"), client.get("/products/blue-mug/")
    assert (miss["X-Django-Cache"], hit["X-Django-Cache"]) == ("MISS", "HIT")
    assert inner_layer.seen == ["/products/blue-mug/"]  # only the render went down the stack
    assert hit["X-Inner-Layer"] == "ran"  # stored with the headers added below, on the way out
    assert len(renders) == 1
    assert not _page_is_locked("/products/blue-mug/")  # the middleware released the render's lock


@pytest.mark.parametrize("url", SHARED_URLS)
def test_hit_carries_every_header_of_the_render(client, catalog, url):
    """CSP, X-Frame-Options and the security headers on the copy, as on the page it copies."""
    per_answer = {"Age", "X-Django-Cache", "Server-Timing"}
    miss, hit = client.get(url), client.get(url)
    assert hit["X-Django-Cache"] == "HIT"
    assert {k: v for k, v in hit.items() if k not in per_answer} == {
        k: v for k, v in miss.items() if k not in per_answer
    }
    for header in ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy"):
        assert hit[header], header
    assert hit["Content-Length"] == str(len(hit.content))


def test_hit_for_a_host_not_allowed_is_refused(client, catalog):
    client.get("/products/blue-mug/")
    assert client.get("/products/blue-mug/", HTTP_HOST="evil.example").status_code == 400


def test_hit_over_plain_http_still_redirects_when_https_is_required(catalog, settings):
    settings.SECURE_SSL_REDIRECT = True
    visitor = Client()
    assert visitor.get("/products/blue-mug/", secure=True)["X-Django-Cache"] == "MISS"
    assert visitor.get("/products/blue-mug/", secure=True)["X-Django-Cache"] == "HIT"
    redirect = visitor.get("/products/blue-mug/")
    assert redirect.status_code == 301
    assert redirect["Location"] == "https://testserver/products/blue-mug/"


def test_render_that_fails_below_the_middleware_is_not_stored_and_unlocks(client, catalog, inner_layer):
    inner_layer.fail_on_the_way_out = True
    client.raise_request_exception = False
    assert client.get("/products/blue-mug/").status_code == 500
    assert not _page_is_locked("/products/blue-mug/")
    inner_layer.fail_on_the_way_out = False
    assert client.get("/products/blue-mug/")["X-Django-Cache"] == "MISS"  # rendered again, not a 500 copy


def test_decorator_alone_caches_without_the_middleware(client, catalog, settings, renders, django_assert_num_queries):
    """The pattern copies piecemeal: `shared_page` on its own still serves hits, from the view."""
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != "pagecache.middleware.SharedPageMiddleware"]
    client.get("/products/blue-mug/")
    with django_assert_num_queries(1 if USES_DB_CACHE else 0):
        hit = client.get("/products/blue-mug/")
    assert hit["X-Django-Cache"] == "HIT"
    assert hit["Content-Security-Policy"]  # added by CSPMiddleware on the way out, as on any answer
    assert len(renders) == 1
    assert not _page_is_locked("/products/blue-mug/")


def test_category_slug_rename_drops_the_listing_under_its_old_url(client, catalog, django_capture_on_commit_callbacks):
    """The old URL no longer routes to the category: its stored listing must not outlive the rename."""
    for url in ("/categories/kitchen/", "/categories/kitchen/?page=2"):
        assert client.get(url)["X-Django-Cache"] == "MISS"
    with django_capture_on_commit_callbacks(execute=True):
        catalog.category.slug = "cookware"
        catalog.category.save()
    assert client.get("/categories/kitchen/").status_code == 404
    assert client.get("/categories/kitchen/?page=2").status_code == 404
    assert client.get("/categories/cookware/").status_code == 200
