"""uWSGI down: what the API and uncached pages answer, from Nginx, then from Varnish.

tests/stack/test_stack_faults.py proves grace and recovery; this adds the answers for what is
not in the cache. Until Varnish's probe notices (up to ~6 s), Nginx answers for uWSGI
(deploy/nginx/shop.conf: @api_unavailable, @unavailable); afterwards Varnish does
(vcl_backend_error in deploy/varnish/shop.vcl). Both give 503, Retry-After, the security
headers, JSON on the API, and are never stored; /healthz keeps telling the probe the truth.
"""

import pytest

from tests.stack.fixtures import backend_health, http_session, wait_until, wait_until_healthy

pytestmark = pytest.mark.stack

JSON_503 = {"error": "The store is briefly unavailable; try again shortly."}


def _answers(stack, shopper, http, cold, base):
    return {
        "api": shopper.http.get(base + "/api/cart/", timeout=10),
        "add": shopper.add(cold, 1) if base == stack.varnish_url else None,
        "page": http.get(f"{base}/products/{cold}/", timeout=10),
        "page.css": http.get(f"{base}/products/{cold}/x.css", timeout=10),
    }


def _check(answers, server):
    for name, response in answers.items():
        if response is None:
            continue
        assert response.status_code == 503, (name, response.status_code)
        assert response.headers["Server"] == server, name
        assert response.headers["Retry-After"] == "10", name
        assert "no-store" in response.headers["Cache-Control"], name
        assert response.headers["X-Frame-Options"] == "DENY", name
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"], name
        if name in ("api", "add"):
            assert response.headers["Content-Type"] == "application/json", name
            assert response.json() == JSON_503
        else:
            # HTML whatever the URL's extension says.
            assert response.headers["Content-Type"] == "text/html; charset=utf-8", name
            assert "right back" in response.text


def test_uwsgi_down_api_answers_json_503_and_pages_a_503_then_recovers(fault_stack):
    stack = fault_stack
    http = http_session()
    cold, in_cart, shopper = stack.shopper_with_one_in_cart()

    stack.stop_uwsgi()
    try:
        from_nginx = _answers(stack, shopper, http, cold, stack.varnish_url)
        direct = _answers(stack, shopper, http, cold, stack.nginx_url)
        probe = http.get(stack.nginx_url + "/healthz", timeout=10).status_code
        wait_until(lambda: backend_health(stack) == "sick", 20, "Varnish marking its backend sick", step=0.5)
        from_varnish = _answers(stack, shopper, http, cold, stack.varnish_url)
    finally:
        stack.start_uwsgi()

    _check(from_nginx, "nginx")
    _check(direct, "nginx")
    _check(from_varnish, "Varnish")
    assert probe == 502  # the probe hears that uWSGI is gone
    assert shopper.ledger == {in_cart: 1}

    wait_until_healthy(stack, timeout=30)
    assert http.get(stack.url(f"/products/{cold}/"), timeout=10).status_code == 200
    assert shopper.cart() == {in_cart: 1}
