"""Security headers on every class of answer Django gives (Nginx adds them to static files)."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

# Also what tests/stack/test_stack_security_headers.py expects through Nginx and Varnish.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def _assert_security_headers(response):
    for name, value in SECURITY_HEADERS.items():
        assert response.get(name) == value, name
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy


@pytest.mark.parametrize(
    "url", ["/", "/products/blue-mug/", "/search/?q=mug", "/cart/", "/api/cart/", "/healthz", "/nothing-here/"]
)
def test_every_answer_carries_the_security_headers(client, product, url):
    _assert_security_headers(client.get(url))


def test_cached_answers_carry_them_too(client, product):
    client.get("/products/blue-mug/")
    response = client.get("/products/blue-mug/")
    assert response["X-Django-Cache"] == "HIT"
    _assert_security_headers(response)


def test_bad_host_answer_carries_them(product):
    response = Client(HTTP_HOST="evil.example").get("/products/blue-mug/")
    assert response.status_code == 400
    _assert_security_headers(response)


def test_admin_login_carries_them(client):
    _assert_security_headers(client.get("/admin/login/"))


def test_hsts_is_sent_over_https_only(client, product, settings):
    settings.SECURE_HSTS_SECONDS = 31536000
    assert "Strict-Transport-Security" not in client.get("/")
    assert client.get("/", secure=True)["Strict-Transport-Security"].startswith("max-age=31536000")


def test_no_traceback_with_debug_off(client, product, settings, monkeypatch):
    from shop.models import ProductQuerySet

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(ProductQuerySet, "active", broken)
    client.raise_request_exception = False
    response = client.get("/products/blue-mug/")
    assert response.status_code == 500
    page = response.content.decode()
    assert "secret internals" not in page
    assert "Traceback" not in page
    assert "Something went wrong" in page
