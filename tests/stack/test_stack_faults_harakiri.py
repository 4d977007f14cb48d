"""A request killed by uWSGI's harakiri in the middle of a cart change leaves no partial write.

An add to the cart is one transaction (shop/cart.py): it first updates the cart row (its lock),
then the line. Here another transaction holds the line's row lock, as a long one elsewhere
would, so the add has written the cart row and waits. uWSGI kills the worker after its harakiri
(3 s on this stack; 30 s in production): the connection dies, MariaDB rolls the transaction
back, and the visitor gets the API's JSON 503 from Nginx. Nothing of the add remains.
"""

import threading

import pytest

from tests.stack.fixtures import wait_until, wait_until_healthy
from tests.stack.throwaway import HARAKIRI_SECONDS, Shopper

pytestmark = pytest.mark.stack


def _query(connection, sql, *args):
    cursor = connection.cursor()
    cursor.execute(sql, args)
    return cursor.fetchall()


def _open_transactions(db, except_thread):
    """Return (state, rows modified) of every InnoDB transaction but that of `except_thread`.

    InnoDB refreshes this table only when it was not read for 0.1 s: poll it more slowly.
    """
    return _query(
        db,
        "SELECT trx_state, trx_rows_modified FROM information_schema.innodb_trx WHERE trx_mysql_thread_id <> %s",
        except_thread,
    )


def test_harakiri_in_the_middle_of_an_add_leaves_nothing_of_it(fault_stack):
    stack = fault_stack
    [slug] = stack.fresh_slugs(1)
    shopper = Shopper(stack).start()
    shopper.add(slug, 1)
    db = stack.mariadb.connect(stack.mariadb.database)
    db.autocommit(True)
    [(cart_id, updated_at)] = _query(
        db, "SELECT id, updated_at FROM shop_cart WHERE session_key = %s", shopper.http.cookies["sessionid"]
    )
    [(line_id, quantity)] = _query(db, "SELECT id, quantity FROM shop_cartitem WHERE cart_id = %s", cart_id)
    log = next(stack.log_dir.rglob("uwsgi.log"))
    killed_before = log.read_text(errors="replace").count("HARAKIRI ON WORKER")

    blocker = stack.mariadb.connect(stack.mariadb.database)
    blocker.autocommit(False)
    _query(blocker, "SELECT quantity FROM shop_cartitem WHERE id = %s FOR UPDATE", line_id)
    answer = {}
    adding = threading.Thread(target=lambda: answer.setdefault("response", shopper.add(slug, 1)))
    try:
        adding.start()
        # The add has written (the cart row) and now waits for the line: caught mid-transaction.
        mid_write = wait_until(
            lambda: ("LOCK WAIT", 1) in _open_transactions(db, blocker.thread_id()),
            10,
            "the add waiting for the line after its first write",
            step=0.3,
        )
        adding.join(timeout=HARAKIRI_SECONDS + 15)
    finally:
        blocker.rollback()
        blocker.close()
    assert mid_write
    assert not adding.is_alive()

    # The worker was killed; the visitor heard a clean JSON 503, not a hang or a bare 502.
    response = answer["response"]
    assert response.status_code == 503, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Retry-After"] == "10"
    wait_until(lambda: log.read_text(errors="replace").count("HARAKIRI ON WORKER") > killed_before, 10, "harakiri")
    # The dead connection's transaction is rolled back: nothing of the add is left.
    wait_until(lambda: _open_transactions(db, -1) == (), 20, "the killed request's transaction to end")
    assert _query(db, "SELECT updated_at FROM shop_cart WHERE id = %s", cart_id) == ((updated_at,),)
    assert _query(db, "SELECT id, quantity FROM shop_cartitem WHERE cart_id = %s", cart_id) == ((line_id, quantity),)
    db.close()
    assert shopper.cart() == shopper.ledger == {slug: 1}

    # And the store goes on: a new worker takes the next add.
    wait_until_healthy(stack)
    assert shopper.add(slug, 1).status_code == 200
    assert shopper.cart() == {slug: 2}
