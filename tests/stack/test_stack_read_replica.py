"""The store on a real MariaDB primary and replica (issue 7: read replicas; shop/replicas.py).

tests/stack/replication.py starts both servers, replicating; the stack's one node has
DATABASE_URL on the primary and DATABASE_REPLICA_URL on the replica. What the router promises:

- shared catalog pages read the replica: a row changed on the replica alone (the test writes
  it there, outside replication) shows on the product page, and not in the cart, which reads
  the primary;
- a cart change shows on the very next request, even while the replica is seconds behind and
  does not have it yet;
- a replica that stops, falls too far behind, or stops replicating is skipped: pages stay 200
  and show the primary's data, and the replica is used again once it is back.

Pages are requested straight from Nginx with fresh products, so neither Varnish nor Django's
cache answers for the database.
"""

import itertools
import shutil
import tempfile
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from deploy.stack import Stack
from tests.stack.fixtures import DEMO_PRODUCTS, ROOT, TIMINGS, Catalog, http_session, wait_until
from tests.stack.replication import ReplicatedMariaDB

pytestmark = pytest.mark.stack

VARNISH_PORT, NGINX_PORT = 16097, 18097
PRIMARY_PORT, REPLICA_PORT = 23306, 23307
# The router re-checks the replica every half second and skips it beyond 2 s of lag, so the
# tests need not wait long for its verdict (the defaults are 5 s and 5 s).
CHECK_SECONDS, MAX_LAG_SECONDS = 0.5, 2


@pytest.fixture(scope="module")
def replicated(request):
    """A primary and a replica of the test's own, and the store on them (one app node)."""
    folder = Path(tempfile.mkdtemp(prefix="shop-replica-"))
    folder.chmod(0o755)
    pair = ReplicatedMariaDB(folder / "mariadb", PRIMARY_PORT, REPLICA_PORT)
    stack = Stack(
        ROOT,
        folder / "run",
        varnish_port=VARNISH_PORT,
        nginx_port=NGINX_PORT,
        env={
            "SHOP_DEMO": "1",
            "DATABASE_URL": pair.url("primary", "shop"),
            "DATABASE_REPLICA_URL": pair.url("replica", "shop"),
            "REPLICA_CHECK_SECONDS": str(CHECK_SECONDS),
            "REPLICA_MAX_LAG_SECONDS": str(MAX_LAG_SECONDS),
            # The cache table lives on the primary, like every write.
            "CACHE_URL": "dbcache://shop_cache",
        },
    )

    def stop():
        try:
            stack.stop()
        finally:
            pair.stop()
            shutil.rmtree(folder, ignore_errors=True)

    request.addfinalizer(stop)
    began = time.monotonic()
    pair.start()
    # Made on the primary, the database and everything in it reach the replica by replication.
    pair.query("primary", "CREATE DATABASE shop CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    stack.prepare_django()
    stack.manage("seed_demo", "--products", str(DEMO_PRODUCTS), "-v0")
    pair.wait_until_caught_up()
    TIMINGS["read-replica"] = (time.monotonic() - began, stack.start(manage=False, timeout=90))
    return pair, stack


@pytest.fixture(scope="module")
def products(replicated):
    return Catalog(replicated[1])


def _replica_in_use(pair, stack, product):
    """Tell whether a fresh page of `product` reads the replica: give the replica alone a new name."""
    marker = f"Replica copy of {product.name}"
    pair.query("replica", f"UPDATE shop_product SET name = '{marker}' WHERE id = {product.pk}", database="shop")
    try:
        return marker in http_session().get(stack.nginx_url + product.path).text
    finally:
        _restore_name(pair, product)


def _restore_name(pair, product):
    name = product.name.replace("'", "''")
    pair.query("replica", f"UPDATE shop_product SET name = '{name}' WHERE id = {product.pk}", database="shop")


def _add_to_cart(http, stack, product):
    answer = http.post(
        stack.url("/api/cart/items/"),
        json={"product": product.slug},
        headers={"X-CSRFToken": http.cookies["csrftoken"], "Origin": stack.varnish_url},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


# ------------------------------------------------------------------------------------------------
# Who reads what
# ------------------------------------------------------------------------------------------------


def test_catalog_pages_read_the_replica_and_the_cart_reads_the_primary(replicated, products):
    pair, stack = replicated
    [product] = products.fresh()
    marker = f"Replica copy of {product.name}"
    # Written on the replica alone (it has no binary log; the primary never hears of it).
    pair.query("replica", f"UPDATE shop_product SET name = '{marker}' WHERE id = {product.pk}", database="shop")
    try:
        page = http_session().get(stack.nginx_url + product.path)
        shopper = http_session()
        shopper.get(stack.url("/api/cart/"))
        cart = _add_to_cart(shopper, stack, product)
        cart_page = shopper.get(stack.url("/cart/"))
    finally:
        _restore_name(pair, product)

    assert page.status_code == 200 and page.headers["X-Django-Cache"] == "MISS"
    assert f"<h1>{marker}</h1>" in page.text  # the shared page: the replica's row
    assert [item["name"] for item in cart["items"]] == [product.name]  # the cart: the primary's
    assert product.name in cart_page.text and marker not in cart_page.text


def test_cart_change_shows_on_the_very_next_request_while_the_replica_lags(replicated, products):
    pair, stack = replicated
    mug, lamp = products.fresh(2)
    shopper = http_session()
    shopper.get(stack.url("/api/cart/"))
    pair.delay_replication(5)  # every change reaches the replica 5 s late
    try:
        answers = []
        for product in (mug, lamp, lamp):
            _add_to_cart(shopper, stack, product)
            answers.append(shopper.get(stack.url("/api/cart/")).json()["count"])
        cart_page = shopper.get(stack.url("/cart/")).text
        # The replica has not seen these adds yet: reading it would have shown an empty cart.
        [(on_replica,)] = pair.query(
            "replica",
            "SELECT COUNT(*) FROM shop_cartitem JOIN shop_cart ON shop_cart.id = shop_cartitem.cart_id "
            f"WHERE shop_cart.session_key = '{shopper.cookies['sessionid']}'",
            database="shop",
        )
    finally:
        pair.delay_replication(0)
        pair.wait_until_caught_up()

    assert answers == [1, 2, 3]
    assert f'data-cart-line="{mug.slug}"' in cart_page and f'data-cart-line="{lamp.slug}"' in cart_page
    assert on_replica == 0


# ------------------------------------------------------------------------------------------------
# A replica that cannot be used
# ------------------------------------------------------------------------------------------------


def test_stopped_replica_leaves_the_store_on_the_primary(replicated, products):
    pair, stack = replicated
    http = http_session()
    probe, *fresh = products.fresh(10)
    assert _replica_in_use(pair, stack, probe)

    pair.stop_replica()
    try:
        # Once the router's next check finds it gone, every page reads the primary.
        time.sleep(CHECK_SECONDS * 2)
        pages = [http.get(stack.nginx_url + product.path) for product in fresh[:3]]
        listing = http.get(stack.nginx_url + f"/categories/{fresh[3].category}/?page=1")
        cart = http.get(stack.url("/api/cart/"))
    finally:
        pair.start_replica()

    assert [(p.status_code, p.headers["X-Django-Cache"]) for p in pages] == [(200, "MISS")] * 3
    assert all(f"<h1>{product.name}</h1>" in page.text for product, page in zip(fresh, pages, strict=False))
    assert listing.status_code == 200 and cart.status_code == 200
    # Back in use by itself once it answers and replicates again.
    wait_until(lambda: _replica_in_use(pair, stack, fresh.pop()), 10, "the router using the replica again")


@pytest.mark.parametrize("fall_behind", ["paused", "delayed"])
def test_replica_behind_the_primary_is_skipped(replicated, products, fall_behind):
    pair, stack = replicated
    [product] = products.fresh()
    new_price = str(Decimal(product.price) + Decimal("5.55"))
    if fall_behind == "paused":
        pair.pause_replication()  # up, answering, but applying nothing: Slave_SQL_Running: No
    else:
        pair.delay_replication(60)  # replicating, but each change lands 60 s late
    try:
        stack.manage(
            "shell",
            "-c",
            f"from shop.models import Product; Product.objects.filter(pk={product.pk}).update(price='{new_price}')",
        )
        if fall_behind == "delayed":
            # Seconds_Behind_Master counts up while the change waits: past the allowed lag ...
            wait_until(
                lambda: (pair.replica_status().get("Seconds_Behind_Master") or 0) > MAX_LAG_SECONDS,
                30,
                "the replica falling behind",
            )
        time.sleep(CHECK_SECONDS * 2)  # ... and past the router's next look at it
        [(replica_price,)] = pair.query(
            "replica", f"SELECT price FROM shop_product WHERE id = {product.pk}", database="shop"
        )
        page = http_session().get(stack.nginx_url + product.path)
    finally:
        if fall_behind == "paused":
            pair.resume_replication()
        else:
            pair.delay_replication(0)
        pair.wait_until_caught_up()

    assert str(replica_price) == product.price  # the replica still has the old price ...
    assert page.status_code == 200
    assert f"€{new_price}</p>" in page.text  # ... the page shows the primary's


# ------------------------------------------------------------------------------------------------
# A replica that fails between two checks, or lags behind a change
# ------------------------------------------------------------------------------------------------


def test_replica_dying_under_load_costs_no_page(replicated):
    pair, stack = replicated
    answers, stop = [], threading.Event()

    def search(worker):
        # Every query is new: each request renders, reading the catalog from the replica.
        http = http_session()
        for number in itertools.count():
            if stop.is_set():
                return
            answers.append(http.get(f"{stack.nginx_url}/search/?q=mug{worker}x{number}", timeout=15).status_code)

    threads = [threading.Thread(target=search, args=(worker,), daemon=True) for worker in range(2)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)
        pair.stop_replica()
        time.sleep(2)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        pair.start_replica()

    assert len(answers) > 20
    assert Counter(answers) == {200: len(answers)}


_SAVE_PRICE = "from shop.models import Product; p = Product.objects.get(pk={pk}); p.price = '{price}'; p.save()"


def test_price_change_is_not_cached_again_from_a_lagging_replica(replicated, products):
    pair, stack = replicated
    [product] = products.fresh()
    http = http_session()
    http.get(stack.nginx_url + product.path)
    new_price = str(Decimal(product.price) + Decimal("7.77"))
    pair.delay_replication(5)  # behind, but within REPLICA_MAX_LAG_SECONDS for its first 2 s
    try:
        # A save (not an update): its signal drops the page once the primary commits.
        stack.manage("shell", "-c", _SAVE_PRICE.format(pk=product.pk, price=new_price))
        right_after = http.get(stack.nginx_url + product.path)
        pair.wait_until_caught_up()
        later = http.get(stack.nginx_url + product.path)
    finally:
        pair.delay_replication(0)
        pair.wait_until_caught_up()

    assert f"€{new_price}</p>" in right_after.text
    assert f"€{new_price}</p>" in later.text
