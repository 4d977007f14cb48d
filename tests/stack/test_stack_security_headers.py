"""The security headers on every class of answer the stack gives, whoever gives it.

Django sets them on its answers (config/settings.py); Nginx on its files and its own error
pages (deploy/nginx/security_headers.conf, values in conf.d/shop-security-headers.conf); Varnish
on its own answers (add_security_headers in deploy/varnish/shop.vcl). Three copies of one
policy, so each answer is compared with Django's: the same values, the same CSP directives,
each header exactly once. (The 503s of an outage are checked in test_stack_faults_uwsgi.py;
HSTS, sent by Django over HTTPS only, in tests/test_security.py.)
"""

import re

import pytest

from tests.stack.edge import outsider_session
from tests.stack.fixtures import http_session, stylesheet_path
from tests.test_security import SECURITY_HEADERS

pytestmark = pytest.mark.stack


def _directives(policy):
    """Return a CSP as a set of directives: django-csp's order varies between processes."""
    return {" ".join(part.split()) for part in policy.split(";") if part.strip()}


@pytest.fixture(scope="module")
def django_policy(stack):
    return _directives(http_session().get(stack.nginx_url + "/").headers["Content-Security-Policy"])


@pytest.fixture(scope="module")
def answers(stack, catalog):
    """One answer of each class, named for who gives it and why."""
    [product] = catalog.fresh()
    http, v, n = http_session(), stack.varnish_url, stack.nginx_url
    page = http.get(v + product.path).text
    media = re.search(r'src="(/media/[^"]+)"', page)
    assert media, "the product page shows no uploaded photo"
    css = stylesheet_path(stack)
    http.get(v + "/api/cart/")
    token = {"X-CSRFToken": http.cookies["csrftoken"], "Origin": v}
    return {
        "django shared page, miss": http.get(v + f"/products/{catalog.fresh()[0].slug}/"),
        "django shared page, hit": http.get(v + product.path),
        "django private JSON": http.get(v + "/api/cart/"),
        "django cart page": http.get(v + "/cart/"),
        "django 404": http.get(v + "/products/no-such-product/"),
        "django 400 (unknown host)": http.get(v + "/", headers={"Host": "evil.example"}),
        "django 405 JSON": http.put(v + "/api/cart/", headers=token),
        "nginx hashed static": http.get(n + css),
        "nginx hashed static via varnish": http.get(v + css),
        "nginx unhashed static": http.get(n + re.sub(r"\.[0-9a-f]{12}\.css$", ".css", css)),
        "nginx media": http.get(n + media.group(1)),
        "nginx static 404": http.get(n + "/static/shop/no-such-file.css"),
        "nginx media 404": http.get(n + "/media/no-such-file.png"),
        "nginx 414": http.get(n + "/?q=" + "a" * 10_000),
        "nginx 400 (headers too large)": http.get(n + "/", headers={f"X-Big{i}": "a" * 6200 for i in range(5)}),
        "nginx 413 JSON": http.post(n + "/api/cart/items/", data=b"x" * 40_000, headers=token),
        "nginx 413 page": http.post(n + "/", data=b"x" * 2_000_000),
        "varnish 501": http.request("PROPFIND", v + "/"),
        "varnish 400 (escaped path)": http.get(v + "/cart%2fx.css"),
        "varnish 405 (PURGE outside the ACL)": outsider_session().request("PURGE", v + product.path),
    }


def test_each_class_was_answered_by_whom_it_says(answers):
    statuses = {name: (r.status_code, r.headers.get("Server")) for name, r in answers.items()}
    assert statuses == {
        "django shared page, miss": (200, "nginx"),
        "django shared page, hit": (200, "nginx"),
        "django private JSON": (200, "nginx"),
        "django cart page": (200, "nginx"),
        "django 404": (404, "nginx"),
        "django 400 (unknown host)": (400, "nginx"),
        "django 405 JSON": (405, "nginx"),
        "nginx hashed static": (200, "nginx"),
        "nginx hashed static via varnish": (200, "nginx"),
        "nginx unhashed static": (200, "nginx"),
        "nginx media": (200, "nginx"),
        "nginx static 404": (404, "nginx"),
        "nginx media 404": (404, "nginx"),
        "nginx 414": (414, "nginx"),
        "nginx 400 (headers too large)": (400, "nginx"),
        "nginx 413 JSON": (413, "nginx"),
        "nginx 413 page": (413, "nginx"),
        "varnish 501": (501, "Varnish"),
        "varnish 400 (escaped path)": (400, "Varnish"),
        "varnish 405 (PURGE outside the ACL)": (405, "Varnish"),
    }
    assert answers["django shared page, hit"].headers["X-Cache"] == "HIT"


@pytest.mark.parametrize(
    "name",
    [
        "django shared page, miss",
        "django shared page, hit",
        "django private JSON",
        "django cart page",
        "django 404",
        "django 400 (unknown host)",
        "django 405 JSON",
        "nginx hashed static",
        "nginx hashed static via varnish",
        "nginx unhashed static",
        "nginx media",
        "nginx static 404",
        "nginx media 404",
        "nginx 414",
        "nginx 400 (headers too large)",
        "nginx 413 JSON",
        "nginx 413 page",
        "varnish 501",
        "varnish 400 (escaped path)",
        "varnish 405 (PURGE outside the ACL)",
    ],
)
def test_every_answer_carries_djangos_security_headers_once(answers, django_policy, name):
    headers = answers[name].headers

    # requests joins a repeated header with ", ": a second copy would fail these equalities.
    assert {key: headers.get(key) for key in SECURITY_HEADERS} == SECURITY_HEADERS
    assert _directives(headers["Content-Security-Policy"]) == django_policy
    assert "'unsafe-inline'" not in headers["Content-Security-Policy"]
