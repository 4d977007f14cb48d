"""Fixtures shared by the tests."""

import json

import pytest

from tests.factories import ProductFactory


@pytest.fixture
def product(db):
    return ProductFactory(name="Blue Mug", slug="blue-mug")


@pytest.fixture
def api(client):
    """A client that speaks JSON to the cart API."""

    class Api:
        def get(self, url="/api/cart/"):
            return client.get(url)

        def post(self, data, url="/api/cart/items/"):
            return client.post(url, json.dumps(data), content_type="application/json")

        def patch(self, slug, data):
            return client.patch(f"/api/cart/items/{slug}/", json.dumps(data), content_type="application/json")

        def delete(self, slug):
            return client.delete(f"/api/cart/items/{slug}/")

    return Api()
