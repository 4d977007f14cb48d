"""Django's cache lost: Redis killed (tests/stack/throwaway.py's own), or the cache table dropped.

The cache is only a copy: pages render without it, and carts live in the database with the
sessions (SESSION_ENGINE is the database backend), so no cart is lost. Each failed cache call is
logged and swallowed (pagecache/store.py), never a 500.
"""

import pytest

from tests.stack.fixtures import http_session, wait_until_healthy
from tests.stack.throwaway import Shopper

pytestmark = pytest.mark.stack


def test_redis_down_pages_still_render_and_no_cart_is_lost(fault_stack):
    stack = fault_stack
    http = http_session()
    page, first, second = stack.fresh_slugs(3)
    shopper = Shopper(stack).start()
    shopper.add(first, 2)
    shopper.add(second, 1)
    # Cached by Django (in Redis): the second answer straight from Nginx is Django's hit.
    http.get(f"{stack.nginx_url}/products/{page}/", timeout=10)
    assert http.get(f"{stack.nginx_url}/products/{page}/", timeout=10).headers["X-Django-Cache"] == "HIT"
    log = next(stack.log_dir.rglob("uwsgi.log"))
    logged_before = log.read_text(errors="replace").count("cache unavailable")

    stack.redis.kill()
    try:
        pages = [
            http.get(f"{stack.nginx_url}{path}", timeout=10)
            for path in (f"/products/{page}/", "/", "/search/?q=mug", f"/products/{first}/")
        ]
        cart_while_down = shopper.cart()
        added_while_down = shopper.add(first, 1)
        cart_page = shopper.http.get(stack.url("/cart/"), timeout=10)
    finally:
        stack.redis.start()

    assert [(r.url, r.status_code) for r in pages if r.status_code != 200] == []
    # Rendered afresh: no cache to answer from (and none to store in).
    assert {r.headers.get("X-Django-Cache") for r in pages} == {"MISS"}
    assert cart_while_down == {first: 2, second: 1}
    assert added_while_down.status_code == 200
    assert cart_page.status_code == 200
    assert f'data-cart-line="{first}"' in cart_page.text
    # Each failure was logged, not raised.
    assert log.read_text(errors="replace").count("cache unavailable") > logged_before

    # Back (an empty Redis): the cart is whole, pages are cached again.
    wait_until_healthy(stack)
    assert shopper.cart() == shopper.ledger == {first: 3, second: 1}
    http.get(f"{stack.nginx_url}/products/{page}/", timeout=10)
    assert http.get(f"{stack.nginx_url}/products/{page}/", timeout=10).headers["X-Django-Cache"] == "HIT"


def test_missing_cache_table_pages_still_render_and_the_error_is_logged(sqlite_stack):
    # The default cache backend is the database table; a deploy that forgot createcachetable,
    # or lost the table, must still serve the store.
    stack = sqlite_stack
    http = http_session()
    page, in_cart, shopper = stack.shopper_with_one_in_cart()
    log = next(stack.log_dir.rglob("uwsgi.log"))
    logged_before = log.read_text(errors="replace").count("cache unavailable")

    stack.shell("from django.db import connection\nconnection.cursor().execute('DROP TABLE shop_cache')\nprint(1)")
    try:
        pages = [
            http.get(f"{stack.nginx_url}{path}", timeout=10) for path in (f"/products/{page}/", "/", "/search/?q=mug")
        ]
        added = shopper.add(in_cart, 1)
        cart = shopper.cart()
    finally:
        stack.manage("createcachetable")

    assert [(r.url, r.status_code) for r in pages if r.status_code != 200] == []
    assert added.status_code == 200
    assert cart == shopper.ledger == {in_cart: 2}
    assert log.read_text(errors="replace").count("cache unavailable") > logged_before
