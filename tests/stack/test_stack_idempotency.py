"""A refused add changed nothing, and its retry with the same Idempotency-Key is applied once.

Through Varnish, Nginx and uWSGI on MariaDB: an add caught behind another transaction's lock is
ended inside (uWSGI's harakiri, before Nginx and Varnish give up), rolled back, and answered 503;
the client's retry with the same key then adds once, and any further retry is answered with that
first outcome. The cart always equals the ledger of the answers the client got.
"""

import threading

import pytest

from tests.stack.fixtures import wait_until_healthy
from tests.stack.throwaway import HARAKIRI_SECONDS, Shopper

pytestmark = pytest.mark.stack


def _line_id(db, shopper):
    cursor = db.cursor()
    cursor.execute(
        "SELECT i.id FROM shop_cartitem i JOIN shop_cart c ON c.id = i.cart_id WHERE c.session_key = %s",
        [shopper.http.cookies["sessionid"]],
    )
    return cursor.fetchone()[0]


def test_an_add_refused_behind_a_lock_is_applied_once_by_its_retries(fault_stack):
    stack = fault_stack
    [slug] = stack.fresh_slugs(1)
    shopper = Shopper(stack).start()
    assert shopper.add(slug, 1).status_code == 200
    db = stack.mariadb.connect(stack.mariadb.database)
    db.autocommit(True)
    blocker = stack.mariadb.connect(stack.mariadb.database)
    blocker.autocommit(False)
    blocker.cursor().execute("SELECT quantity FROM shop_cartitem WHERE id = %s FOR UPDATE", [_line_id(db, shopper)])
    answer = {}
    adding = threading.Thread(target=lambda: answer.setdefault("first", shopper.add(slug, 2, key="retry-key-0001")))
    try:
        adding.start()
        adding.join(timeout=HARAKIRI_SECONDS + 15)
    finally:
        blocker.rollback()
        blocker.close()
    assert answer["first"].status_code == 503, answer["first"].text
    assert shopper.cart() == {slug: 1}  # refused: nothing of it was applied
    wait_until_healthy(stack)

    retried = shopper.add(slug, 2, key="retry-key-0001")
    again = shopper.add(slug, 2, key="retry-key-0001")
    assert retried.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == retried.json()
    assert shopper.cart() == shopper.ledger == {slug: 3}
    db.close()


def test_a_retry_after_a_lost_answer_is_not_applied_twice(fault_stack):
    """The add committed but its answer never reached the client (a worker killed after the commit,
    a dropped connection): the client cannot tell, and sends it again with the same key."""
    stack = fault_stack
    [slug] = stack.fresh_slugs(1)
    shopper = Shopper(stack).start()
    first = shopper.add(slug, 4, key="lost-answer-0001")
    assert first.status_code == 200
    retries = [shopper.add(slug, 4, key="lost-answer-0001") for _ in range(3)]
    assert {retry.headers.get("Idempotent-Replayed") for retry in retries} == {"true"}
    assert shopper.cart() == shopper.ledger == {slug: 4}
