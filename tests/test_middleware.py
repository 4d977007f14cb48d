"""A lost database answers a styled 503 with Retry-After (JSON on the API), never a traceback."""

import pytest
from django.db import OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper

pytestmark = pytest.mark.django_db


@pytest.fixture
def database_down(monkeypatch, settings, request):
    # An empty cache of its own: a page cached earlier would (rightly) still be served.
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": request.node.name}
    }

    def refuse(self):
        raise OperationalError("(2003, \"Can't connect to MySQL server on '127.0.0.1' (111)\")")

    monkeypatch.setattr(BaseDatabaseWrapper, "ensure_connection", refuse)


@pytest.mark.parametrize("url", ["/products/blue-mug/", "/cart/", "/healthz"])
def test_page_needing_the_database_answers_styled_503(client, database_down, url):
    client.cookies["sessionid"] = "a" * 32  # a returning visitor: their session is in the database
    response = client.get(url)
    assert response.status_code == 503
    assert response["Retry-After"] == "10"
    assert "no-store" in response["Cache-Control"]
    page = response.content.decode()
    assert "right back" in page
    assert "Traceback" not in page
    assert "OperationalError" not in page


def test_api_answers_json_503(client, database_down):
    client.cookies["sessionid"] = "a" * 32
    response = client.get("/api/cart/")
    assert response.status_code == 503
    assert response.json() == {"error": "The store is briefly unavailable; try again shortly."}


def test_new_visitor_still_gets_an_empty_cart_without_the_database(client, database_down):
    assert client.get("/api/cart/").json()["count"] == 0
