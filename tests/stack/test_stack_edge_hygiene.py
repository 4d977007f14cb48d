"""What a client may not decide at the edge, through the real Varnish -> Nginx -> uWSGI -> Django.

Headers that rewrite the host, URL, method or scheme are dropped or set by Varnish; an unknown
Host is a 400 that is never stored; ad and analytics parameters are cut from the URL; PURGE and
BAN are refused to anyone outside the ACL; methods Varnish would pipe, HEAD, very long URLs, odd
bytes, CRLF and `//host` redirects all get a clear answer, never a 5xx. deploy/varnish/shop.vcl
makes these decisions; its varnishtest cases prove each one alone, these prove them in place.
"""

import shutil
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from deploy.stack import Stack
from tests.stack.edge import get, outsider_session, raw
from tests.stack.fixtures import ROOT, http_session, wait_until

pytestmark = pytest.mark.stack

FORWARDING_HEADERS = {
    "X-Forwarded-Host": "evil.example",
    "X-Original-URL": "/cart/",
    "X-Rewrite-URL": "/cart/",
    "X-HTTP-Method-Override": "DELETE",
    "Forwarded": "for=127.0.0.1;host=evil.example;proto=https",
}


def _buster():
    return f"cb={uuid.uuid4().hex}"


# ------------------------------------------------------------------------------------------------
# Forwarding headers, Host, tracking parameters
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", FORWARDING_HEADERS)
def test_forwarding_header_sent_by_a_client_leaves_the_cached_page_clean(stack, catalog, header):
    [product] = catalog.fresh()
    url = stack.url(f"{product.path}?{_buster()}")
    http = http_session()

    attacked = http.get(url, headers={header: FORWARDING_HEADERS[header]})
    clean = http.get(url)

    assert attacked.status_code == 200
    assert attacked.headers["X-Cache"] == "MISS"
    # The product's page, not the cart the rewrite headers name, and nothing of the attacker's.
    assert f"€{product.price}</p>" in attacked.text
    assert "data-cart-line" not in attacked.text
    assert "evil.example" not in attacked.text
    # What was stored is what a clean request gets.
    assert clean.headers["X-Cache"] == "HIT"
    assert clean.content == attacked.content


def test_method_override_header_does_not_turn_an_add_into_a_delete(stack, catalog):
    [product] = catalog.fresh()
    http = http_session()
    http.get(stack.url("/api/cart/"))
    headers = {"X-CSRFToken": http.cookies["csrftoken"], "Origin": stack.varnish_url}

    for _ in range(2):
        response = http.post(
            stack.url("/api/cart/items/"),
            json={"product": product.slug, "quantity": 1},
            headers={**headers, "X-HTTP-Method-Override": "DELETE"},
        )
        assert response.status_code == 200

    assert [(i["product"], i["quantity"]) for i in http.get(stack.url("/api/cart/")).json()["items"]] == [
        (product.slug, 2)
    ]


@pytest.mark.parametrize("host", ["evil.example", "localhost.evil.example", "127.0.0.1:16081.evil.example"])
def test_unknown_host_is_a_400_and_never_stored(stack, catalog, host):
    [product] = catalog.fresh()
    http = http_session()

    answers = [http.get(stack.url(product.path), headers={"Host": host}) for _ in range(2)]
    clean = http.get(stack.url(product.path))

    assert [a.status_code for a in answers] == [400, 400]
    assert [a.headers["X-Cache"] for a in answers] == ["MISS", "MISS"]
    assert all(host not in a.text for a in answers)
    assert clean.status_code == 200
    assert f"€{product.price}</p>" in clean.text


def test_tracking_parameters_share_the_clean_page_and_are_never_reflected(stack, catalog):
    [product] = catalog.fresh()
    marker = f"zz{uuid.uuid4().hex[:10]}"
    http = http_session()
    clean = http.get(stack.url(product.path))

    tracked = http.get(
        stack.url(f"{product.path}?utm_source={marker}&utm_campaign={marker}&fbclid={marker}&gclid={marker}")
    )
    search = http.get(stack.url(f"/search/?q=mug&utm_source={marker}&fbclid={marker}"))

    assert tracked.status_code == 200
    assert tracked.headers["X-Cache"] == "HIT"
    assert tracked.content == clean.content
    assert search.status_code == 200
    assert marker not in search.text


# ------------------------------------------------------------------------------------------------
# X-Forwarded-Proto, on a stack with HTTPS=1
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def https_stack(stack):
    """The store with HTTPS=1 (Django trusts X-Forwarded-Proto), on the main stack's database."""
    run_dir = Path(tempfile.mkdtemp(prefix="shop-https-"))
    run_dir.chmod(0o755)
    env = {**stack.env, "HTTPS": "1", "CACHE_URL": "locmem://"}
    https = Stack(ROOT, run_dir=run_dir, varnish_port=36083, nginx_port=38083, processes=1, env=env)
    try:
        https.start(manage=False)
        yield https
    finally:
        https.stop()
        shutil.rmtree(run_dir, ignore_errors=True)


def test_x_forwarded_proto_is_the_edges_not_the_clients(https_stack, catalog):
    [product] = catalog.fresh()
    http = http_session()

    # On the plain listener Varnish says "http", whatever the client claims: Django redirects.
    answers = [
        http.get(https_stack.url(product.path), headers={"X-Forwarded-Proto": "https"}, allow_redirects=False)
        for _ in range(2)
    ]

    assert [a.status_code for a in answers] == [301, 301]
    assert answers[0].headers["Location"] == f"https://127.0.0.1:{https_stack.varnish_port}{product.path}"
    assert "Strict-Transport-Security" not in answers[0].headers
    # The redirect is never stored: the key has no scheme, and TLS visitors share it.
    assert [a.headers["X-Cache"] for a in answers] == ["MISS", "MISS"]
    # The probe's URL is exempt, so Varnish keeps seeing Django healthy.
    assert http.get(https_stack.url("/healthz")).status_code == 200


# ------------------------------------------------------------------------------------------------
# PURGE and BAN
# ------------------------------------------------------------------------------------------------


def _cached(http, url):
    return wait_until(lambda: http.get(url).headers["X-Cache"] == "HIT", 5, f"{url} cached", step=0.1)


@pytest.mark.parametrize("claimed", [None, "127.0.0.1"])
def test_purge_and_ban_from_outside_the_acl_are_refused(stack, catalog, claimed):
    [product] = catalog.fresh()
    url = stack.url(product.path)
    http, outsider = http_session(), outsider_session()
    _cached(http, url)
    headers = {"X-Forwarded-For": claimed} if claimed else {}

    purge = outsider.request("PURGE", url, headers=headers)
    ban = outsider.request("BAN", stack.url("/"), headers={**headers, "X-Ban-Path": "^/"})

    assert (purge.status_code, purge.text) == (405, "Not allowed\n")
    assert (ban.status_code, ban.text) == (405, "Not allowed\n")
    assert http.get(url).headers["X-Cache"] == "HIT"  # nothing was dropped


def test_purge_from_the_acl_drops_the_page(stack, catalog):
    [product] = catalog.fresh()
    url = stack.url(product.path)
    http = http_session()
    _cached(http, url)

    purge = http.request("PURGE", url)

    assert (purge.status_code, purge.text) == (200, "Purged\n")
    assert http.get(url).headers["X-Cache"] == "MISS"


# ------------------------------------------------------------------------------------------------
# Bad input at the edge
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["FOO", "PROPFIND", "TRACE", "get", "PRI"])
@pytest.mark.parametrize("path", ["/", "/cart/", "/api/cart/items/"])
def test_unknown_methods_get_501_from_varnish(stack, method, path):
    answer = raw(stack.varnish_port, get(path).replace(b"GET ", method.encode() + b" ", 1))

    assert answer.status == 501, answer
    assert answer.headers["server"] == "Varnish"
    assert answer.headers["x-frame-options"] == "DENY"
    assert b"sessionid" not in answer.body


def test_connect_is_refused_not_tunnelled(stack):
    answer = raw(
        stack.varnish_port,
        b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\nConnection: close\r\n\r\n",
        timeout=5,
    )

    assert answer.status == 501, answer
    assert b"SSH" not in answer.data


@pytest.mark.parametrize("method", ["PUT", "OPTIONS", "DELETE", "PATCH"])
def test_known_methods_a_url_does_not_take_get_a_json_405_from_django(stack, method):
    http = http_session()
    http.get(stack.url("/api/cart/"))
    headers = {"X-CSRFToken": http.cookies["csrftoken"], "Origin": stack.varnish_url}

    response = http.request(method, stack.url("/api/cart/"), headers=headers)

    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD"
    assert "error" in response.json()
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize("path", ["/api/cart/", "/cart/", "/"])
def test_head_has_no_body_and_makes_no_session(stack, path):
    response = http_session().head(stack.url(path))

    assert response.status_code == 200
    assert response.content == b""
    assert "sessionid" not in response.headers.get("Set-Cookie", "")


def test_very_long_urls_get_414_or_are_dropped_and_the_page_stays_whole(stack, catalog):
    [product] = catalog.fresh()
    http = http_session()

    long_url = http.get(stack.url(f"{product.path}?q=" + "a" * 10_000))
    longer = raw(stack.varnish_port, get(f"{product.path}?q=" + "a" * 40_000))

    # Past Nginx's 8 KiB request line: 414. Past Varnish's 32 KiB request (http_req_size):
    # Varnish hangs up without an answer. Neither reaches Django, neither touches the page.
    assert long_url.status_code == 414
    assert longer.status is None
    page = http.get(stack.url(product.path))
    assert page.status_code == 200 and f"€{product.price}</p>" in page.text


ODD_PATHS = [
    b"/products/\x00/",
    b"/products/\x7f/",
    b"/products/\xff\xfe/",
    b"/products/%00/",
    b"/products/%ff%fe/",
    b"/products/%C0%AE%C0%AE/",
    b"/products/<script>alert(1)</script>/",
    b"/products/a b/",
    b"/products/a\tb/",
    b"/products/boot/%0d%0aSet-Cookie:%20injected=1",
    b"/search/?q=%0d%0aX-Injected:%201",
    b"/cart/?add=%0d%0aX-Injected:%201",
    b"/products/boot/\r\nX-Injected: 1",
    b"/" + b"\\" + b"evil.example",
    b"*",
]


@pytest.mark.parametrize("path", ODD_PATHS, ids=repr)
def test_odd_path_bytes_and_crlf_get_a_clear_answer_never_a_5xx(stack, path):
    answer = raw(stack.varnish_port, get(path))

    assert answer.status is not None and answer.status < 500, answer
    assert "injected" not in str(answer.headers).lower()
    assert not any(name.startswith("x-injected") for name in answer.headers)


REDIRECT_TRAPS = [
    "//evil.example",
    "//evil.example/",
    "///evil.example/",
    "//evil.example/%2e%2e",
    "/%2F%2Fevil.example",
    "/%5Cevil.example",
    "/.//evil.example",
    "//evil.example/products/boot",
    "/products//evil.example",
    "/cart//evil.example",
    "/admin//evil.example",
]


@pytest.mark.parametrize("path", REDIRECT_TRAPS)
def test_double_slash_paths_never_redirect_off_site(stack, path):
    answer = raw(stack.varnish_port, get(path))

    assert answer.status is not None and answer.status < 500, answer
    location = answer.headers.get("location", "/")
    # A path of this site, which no browser reads as another host.
    assert location.startswith("/") and not location.startswith(("//", "/\\")), location
    assert urlsplit(location).netloc == ""
