"""shop/idempotency.py: a retried cart write gets its first outcome and is never applied twice."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from shop.models import IdempotentRequest
from tests.concurrency import run_together
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def shopper(db):
    ProductFactory(slug="blue-mug", stock=100)
    client = Client()
    client.get("/api/cart/")
    return client


def _add(client, key=None, quantity=1, slug="blue-mug"):
    headers = {"Idempotency-Key": key} if key else {}
    body = json.dumps({"product": slug, "quantity": quantity})
    return client.post("/api/cart/items/", body, content_type="application/json", headers=headers)


def _count(client):
    return client.get("/api/cart/").json()["count"]


def test_a_retry_with_the_same_key_gets_the_first_answer_and_adds_nothing(shopper):
    _add(shopper, quantity=1)  # a session and a cart, as after a first add
    first, retry = _add(shopper, "key-0001", 2), _add(shopper, "key-0001", 2)
    assert first.status_code == retry.status_code == 200
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert retry.cookies["cart_hint"].value.startswith("3.")
    assert _count(shopper) == 3


def test_a_new_key_is_a_new_action(shopper):
    _add(shopper, quantity=1)
    _add(shopper, "key-0001")
    _add(shopper, "key-0002")
    assert _count(shopper) == 3


def test_a_refusal_is_replayed_too(shopper):
    _add(shopper, quantity=1)
    first, retry = _add(shopper, "key-0001", 500), _add(shopper, "key-0001", 500)
    assert first.status_code == retry.status_code == 400
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"


def test_the_same_key_for_another_request_is_refused(shopper):
    _add(shopper, quantity=1)
    _add(shopper, "key-0001", 2)
    other = _add(shopper, "key-0001", 5)
    assert other.status_code == 422
    assert "another request" in other.json()["error"]
    assert _count(shopper) == 3


def test_one_visitors_key_never_answers_anothers(shopper):
    _add(shopper, quantity=1)
    _add(shopper, "key-0001", 2)
    stranger = Client()
    _add(stranger, quantity=1)
    assert _add(stranger, "key-0001", 2).get("Idempotent-Replayed") is None
    assert _count(stranger) == 3


@pytest.mark.parametrize("key", ["short", "x" * 101, "has space in it", "ünïcödé-key"])
def test_a_malformed_key_is_a_400_and_changes_nothing(shopper, key):
    _add(shopper, quantity=1)
    response = _add(shopper, key, 2)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]
    assert _count(shopper) == 1


def test_patch_and_delete_are_idempotent_too(shopper):
    _add(shopper, quantity=4)
    headers = {"Idempotency-Key": "delete-0001"}
    assert shopper.delete("/api/cart/items/blue-mug/", headers=headers).status_code == 200
    replay = shopper.delete("/api/cart/items/blue-mug/", headers=headers)
    assert replay.status_code == 200  # not "not in your cart": the first answer
    assert replay["Idempotent-Replayed"] == "true"


def test_an_outcome_past_its_time_answers_nothing_and_clearcarts_removes_it(shopper):
    _add(shopper, quantity=1)
    _add(shopper, "key-0001", 2)
    _add(shopper, "key-0002", 1)
    IdempotentRequest.objects.update(created_at=IdempotentRequest.objects.first().created_at - timedelta(days=2))
    assert _add(shopper, "key-0001", 2).get("Idempotent-Replayed") is None
    assert _count(shopper) == 6
    call_command("clearcarts", stdout=StringIO())
    assert list(IdempotentRequest.objects.values_list("key", flat=True)) == ["key-0001"]  # the new one


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_with_one_key_add_once():
    """A client that retries while its first request still waits: one add, every answer the same."""
    ProductFactory(slug="blue-mug", stock=100)
    first = Client()
    _add(first, quantity=1)
    cookies = first.cookies

    def retry(_):
        client = Client()
        client.cookies = cookies
        return _add(client, "retry-0001", 2)

    answers = run_together(6, retry)
    assert {answer.status_code for answer in answers} == {200}
    assert len({answer.content for answer in answers}) == 1
    assert _count(first) == 3
