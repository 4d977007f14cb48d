"""HTTP as RFC 9110/9111 read it, at each hop (Nginx, then Varnish), for every class of answer.

Each Vary value once; one Cache-Control without contradictions; shared pages announce their stale
windows and give the edge its own lifetime, which Varnish consumes; every answer says in
Server-Timing which layer made it, and how.
"""

import re

import pytest

from tests.stack.fixtures import http_session, stylesheet_path

pytestmark = pytest.mark.stack

ENCODINGS = {"identity": {"Accept-Encoding": "identity"}, "gzip": {"Accept-Encoding": "gzip"}}


def _answers(stack, path, headers):
    """The same request at Nginx and at Varnish."""
    http = http_session()
    return {
        "nginx": http.get(stack.nginx_url + path, headers=headers, allow_redirects=False),
        "varnish": http.get(stack.url(path), headers=headers, allow_redirects=False),
    }


def _values(header):
    return [value.strip().lower() for value in header.split(",") if value.strip()]


def _assert_lint_clean(response, where):
    vary = _values(response.headers.get("Vary", ""))
    assert len(vary) == len(set(vary)), f"{where}: Vary repeats a value: {response.headers['Vary']}"
    control = {value.split("=")[0] for value in _values(response.headers.get("Cache-Control", ""))}
    assert not {"public", "private"} <= control, f"{where}: public and private"
    directives = _values(response.headers.get("Cache-Control", ""))
    if "no-store" in control:  # Django's never_cache adds max-age=0, which is no lifetime
        lifetimes = [d for d in directives if d.startswith(("max-age=", "s-maxage=")) and not d.endswith("=0")]
        assert not lifetimes and "public" not in control, f"{where}: no-store with a lifetime: {directives}"
    assert "Surrogate-Control" not in response.headers or where.startswith("nginx"), where


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize(
    "kind, path",
    [
        ("shared", "/"), ("shared", "/categories/kitchen/"), ("shared", "/search/?q=mug"),
        ("private", "/cart/"), ("private", "/api/cart/"), ("health", "/healthz"),
        ("error", "/no/such/page/"), ("error", "/static/no-such-file.css"), ("error", "/api/no/such/thing/"),
    ],
)
def test_every_class_of_answer_is_lint_clean_at_each_hop(stack, kind, path, encoding):
    for hop, response in _answers(stack, path, ENCODINGS[encoding]).items():
        _assert_lint_clean(response, f"{hop} {path} {encoding}")


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_static_files_are_lint_clean_at_each_hop(stack, encoding):
    for hop, response in _answers(stack, stylesheet_path(stack), ENCODINGS[encoding]).items():
        assert response.status_code == 200
        _assert_lint_clean(response, f"{hop} css {encoding}")
        assert _values(response.headers["Vary"]) == ["accept-encoding"]


def test_shared_pages_announce_their_stale_windows_and_the_edge_consumes_its_own_lifetime(stack, catalog):
    [product] = catalog.fresh()
    answers = _answers(stack, product.path, {"Accept-Encoding": "gzip"})
    for response in answers.values():
        control = set(_values(response.headers["Cache-Control"]))
        assert {"stale-while-revalidate=10", "stale-if-error=21600", "public"} <= control, control
    assert answers["nginx"].headers["Surrogate-Control"].startswith("max-age=")
    assert "Surrogate-Control" not in answers["varnish"].headers


def test_server_timing_names_the_layer_and_how_it_answered(stack, catalog):
    [product] = catalog.fresh()
    http = http_session()
    first, second = http.get(stack.url(product.path)), http.get(stack.url(product.path))
    assert re.search(r'django;desc="(MISS|HIT)"', first.headers["Server-Timing"])
    assert 'varnish;desc="MISS"' in first.headers["Server-Timing"]
    assert re.search(r'varnish;desc="HIT", varnish-age;desc="\d+"$', second.headers["Server-Timing"])
    # The copy says how it was made: by Django, once, with its time and queries.
    djangos_part = [response.headers["Server-Timing"].split(", varnish;")[0] for response in (first, second)]
    assert djangos_part[0] == djangos_part[1]


@pytest.mark.parametrize("path", ["/cart/", "/api/cart/", "/healthz"])
def test_private_and_health_answers_carry_djangos_part_and_the_pass(stack, path):
    timing = http_session().get(stack.url(path)).headers["Server-Timing"]
    assert re.match(r'^django;dur=\d+\.\d, django-db;desc="\d+ queries", varnish;desc="PASS"$', timing), timing


def test_a_browser_revalidates_a_copy_older_than_its_max_age_for_a_304(stack, catalog):
    """The decision on Age: a copy that sat in a cache may reach the browser already stale, so the
    browser asks again with its validator and the edge answers 304 without a body or Django."""
    [product] = catalog.fresh()
    http = http_session()
    http.get(stack.url(product.path))
    copy = http.get(stack.url(product.path))
    revalidated = http.get(stack.url(product.path), headers={"If-None-Match": copy.headers["ETag"]})
    assert revalidated.status_code == 304
    assert revalidated.content == b""
    assert revalidated.headers["X-Cache"] == "HIT"
