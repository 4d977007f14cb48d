"""Fixtures shared by the tests."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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


class _BanRecorder(BaseHTTPRequestHandler):
    received = []

    def do_BAN(self):  # noqa: N802 (the HTTP method's name)
        self.received.append(self.headers["X-Ban-Path"])
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_varnish():
    """A local server that records the BANs sent to it: (its URL, the X-Ban-Path values)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BanRecorder)
    _BanRecorder.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", _BanRecorder.received
    server.shutdown()
    server.server_close()
