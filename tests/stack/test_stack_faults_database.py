"""The database lost and back, through the real stack (tests/stack/throwaway.py's MariaDB, killed).

While it is gone: pages Varnish holds are served (past their 3 s TTL: grace), everything else
is a 503 that says when to try again, styled and with no traceback, JSON on the API, and never
stored; first Django's own (shop/middleware.py), then Varnish's once its probe of /healthz has
marked the backend sick. When it is back: no request fails, because CONN_HEALTH_CHECKS makes
each worker replace its dead connection instead of failing once with it.
"""

import time

import pytest

from tests.stack.fixtures import backend_health, http_session, varnish_hit, wait_until, wait_until_healthy
from tests.stack.throwaway import Shopper

pytestmark = pytest.mark.stack

SECRETS = ("Traceback", "OperationalError", "MySQLdb", 'File "')


def _assert_unavailable_page(response):
    assert response.status_code == 503, response.text[:300]
    assert response.headers["Retry-After"] == "10"
    assert response.headers["Content-Type"].startswith("text/html")
    assert "right back" in response.text
    assert not any(secret in response.text for secret in SECRETS), response.text
    assert "no-store" in response.headers["Cache-Control"]


def _assert_unavailable_json(response):
    assert response.status_code == 503, response.text[:300]
    assert response.headers["Retry-After"] == "10"
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"error": "The store is briefly unavailable; try again shortly."}


def test_database_down_serves_cached_pages_and_clean_503s_then_recovers_without_errors(fault_stack):
    stack = fault_stack
    http = http_session()
    warm_a, warm_b, cold_a, cold_b, in_cart = stack.fresh_slugs(5)
    warm = [stack.url(f"/products/{slug}/") for slug in (warm_a, warm_b)]
    shopper = Shopper(stack).start()
    shopper.add(in_cart, 2)
    bodies = {url: wait_until(lambda url=url: varnish_hit(http, url), 5, f"{url} cached").content for url in warm}

    served = []

    def serve_warm_pages():
        for url in warm:
            response = http.get(url, timeout=10)
            served.append(
                (
                    url,
                    response.status_code,
                    response.headers.get("X-Cache"),
                    response.content,
                    int(response.headers.get("Age", -1)),
                )
            )
        return backend_health(stack) == "sick"

    stack.mariadb.kill()
    try:
        # At once: Django answers for itself (its middleware), before Varnish's probe notices.
        django_page = http.get(stack.url(f"/products/{cold_a}/"), timeout=10)
        django_page_again = http.get(stack.url(f"/products/{cold_a}/"), timeout=10)
        django_cart_page = shopper.http.get(stack.url("/cart/"), timeout=10)
        django_api = shopper.http.get(stack.url("/api/cart/"), timeout=10)
        refused_add = shopper.add(in_cart, 1)
        # Then Varnish, whose probe of /healthz fails: its own 503s, and grace for what it holds.
        wait_until(serve_warm_pages, 20, "Varnish marking its backend sick", step=0.5)
        time.sleep(1)
        serve_warm_pages()
        varnish_page = http.get(stack.url(f"/products/{cold_b}/"), timeout=10)
        varnish_api = shopper.http.get(stack.url("/api/cart/"), timeout=10)
    finally:
        stack.mariadb.start()

    _assert_unavailable_page(django_page)
    assert "/static/shop/store." in django_page.text  # the store's own look: Django's 503.html
    assert django_page.headers["X-Cache"] == django_page_again.headers["X-Cache"] == "MISS"
    _assert_unavailable_page(django_page_again)
    _assert_unavailable_page(django_cart_page)
    _assert_unavailable_json(django_api)
    _assert_unavailable_json(refused_add)
    _assert_unavailable_page(varnish_page)
    _assert_unavailable_json(varnish_api)
    # Every cached page was served, unchanged, all along; some past their TTL (grace).
    assert [(url, status, cache) for url, status, cache, _, _ in served if status != 200 or cache != "HIT"] == []
    assert [url for url, _, _, body, _ in served if body != bodies[url]] == []
    assert max(age for *_, age in served) > 3

    # Back: once Varnish's probe agrees, not one request fails, on any of the 4 workers.
    wait_until_healthy(stack, timeout=40)
    outcomes = []
    for round_ in range(12):
        outcomes.append(shopper.http.get(stack.url("/api/cart/"), timeout=10).status_code)
        outcomes.append(shopper.http.get(stack.url("/cart/"), timeout=10).status_code)
        outcomes.append(http.get(stack.url(f"/products/{cold_b}/?round={round_}"), timeout=10).status_code)
        outcomes.append(shopper.add(in_cart, 1).status_code)
    assert outcomes == [200] * len(outcomes)
    # Nothing was lost, and the refused add changed nothing.
    assert shopper.cart() == shopper.ledger == {in_cart: 2 + 12}
