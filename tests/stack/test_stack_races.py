"""Concurrent cart changes through the real stack, counted against a ledger.

One visitor's requests race each other across 4 uWSGI workers, on MariaDB (row locks) and on a
SQLite file (its write lock, taken at BEGIN): many adds of one product, the first of them all at
once (one line, not two), and adds of different products side by side. The server's cart must
equal the client's count of the adds it answered 200, and every add must succeed.
"""

import threading

import pytest

from tests.stack.throwaway import Shopper

pytestmark = pytest.mark.stack

THREADS = 4
ADDS_PER_THREAD = 8


def _race(connections, work):
    """Run work(i, connection) in one thread per connection, released at the same instant."""
    barrier = threading.Barrier(len(connections))

    def run(i, connection):
        barrier.wait()
        work(i, connection)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a racing request hung"


@pytest.fixture(params=["fault_stack", "sqlite_stack"], ids=["mariadb", "sqlite"])
def racing_stack(request):
    return request.getfixturevalue(request.param)


def test_concurrent_adds_of_one_product_make_one_line_with_every_add(racing_stack):
    stack = racing_stack
    # The visitor's session and cart exist (one of `first`); `contested` has no line yet.
    contested, first, shopper = stack.shopper_with_one_in_cart()
    connections = [shopper.clone() for _ in range(THREADS)]

    # Every thread's first add is a first add of `contested`: they race to create its line.
    _race(connections, lambda i, me: [me.add(contested, 1) for _ in range(ADDS_PER_THREAD)])

    assert shopper.failures == []
    assert shopper.ledger == {first: 1, contested: THREADS * ADDS_PER_THREAD}
    assert shopper.cart() == shopper.ledger


def test_concurrent_adds_of_different_products_lose_none(racing_stack):
    stack = racing_stack
    products = stack.fresh_slugs(THREADS)
    shopper = Shopper(stack).start()
    shopper.add(products[0], 1)
    connections = [shopper.clone() for _ in range(THREADS)]

    _race(connections, lambda i, me: [me.add(products[i], 2) for _ in range(ADDS_PER_THREAD)])

    assert shopper.failures == []
    expected = {slug: 2 * ADDS_PER_THREAD for slug in products}
    expected[products[0]] += 1
    assert shopper.ledger == expected
    assert shopper.cart() == shopper.ledger


def test_many_visitors_adding_at_once_each_get_exactly_their_own(racing_stack):
    stack = racing_stack
    [shared_product] = stack.fresh_slugs(1)
    shoppers = [Shopper(stack).start() for _ in range(THREADS * 2)]

    # Each visitor's first add (session, cart and line made at once), then more, all racing.
    _race(shoppers, lambda i, me: [me.add(shared_product, 1 + i % 3) for _ in range(3)])

    assert [s.failures for s in shoppers] == [[]] * len(shoppers)
    assert [s.cart() for s in shoppers] == [s.ledger for s in shoppers]
    assert [s.ledger for s in shoppers] == [{shared_product: 3 * (1 + i % 3)} for i in range(len(shoppers))]
