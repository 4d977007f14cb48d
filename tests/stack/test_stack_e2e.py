"""The e2e suite (`python -m e2e URL`, docs/e2e.md) against the stack the tests start: it passes on the
stack, through a faithful proxy and under a base path, and fails, naming the check, on edges that
break the contract. Its URL and header logic is tested first, without a stack."""

import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest

from e2e.cli import main, selected_checks
from e2e.headers import edge_signal, from_cache
from e2e.html import parse
from e2e.http import Pacer
from e2e.urls import BaseUrl, UsageError
from tests.stack.broken_edges import (
    BasePathEdge,
    CookieLeakingEdge,
    HidingEdge,
    MutableStaticEdge,
    PassThroughEdge,
    SharedCartEdge,
    TlsEdge,
)
from tests.stack.fixtures import ADMIN_PASSWORD, ADMIN_USERNAME

ROOT = Path(__file__).resolve().parents[2]
# Shorter than the 0.2 s a production run waits, so the six runs stay within the suite's budget.
TEST_DELAY = "0.05"


def _run_e2e(url, *args, catalog=None, admin=False, junit=None):
    """Run `python -m e2e` as a user would; return (exit status, what it printed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("E2E_")}
    env["E2E_DELAY"] = TEST_DELAY
    if admin:
        env.update(E2E_ADMIN_USER=ADMIN_USERNAME, E2E_ADMIN_PASSWORD=ADMIN_PASSWORD)
    if junit:
        env["E2E_JUNIT"] = str(junit)
    done = subprocess.run(
        [sys.executable, "-m", "e2e", *args, url], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
    )
    output = done.stdout + done.stderr
    if catalog is not None:
        _reserve(catalog, output)
    return done.returncode, output


def _reserve(catalog, output):
    """Hand the products the run used to no other test: later tests expect their pages uncached."""
    catalog.set_aside(set(re.findall(r"/products/[^/\s,]+/", output)))


def _rows(output):
    """Return {check: (status, detail)} from the table the run printed."""
    found = re.findall(r"^(\S+)\s+(PASS|FAIL|SKIP)\s+[\d.]+s  (.*)$", output, re.MULTILINE)
    return {name: (status, detail) for name, status, detail in found}


def _failed(output):
    return {name for name, (status, _) in _rows(output).items() if status == "FAIL"}


# ------------------------------------------------------------------------------------------------
# Without a stack: URLs, headers, forms, the command line
# ------------------------------------------------------------------------------------------------


def test_a_base_path_keeps_every_url_and_link_under_it():
    base = BaseUrl("https://example.com/shop")

    assert base.url == "https://example.com/shop/"
    assert base.join("/api/cart/") == base.join("api/cart/") == "https://example.com/shop/api/cart/"
    assert base.resolve("/shop/products/mug/#top", base.url) == "https://example.com/shop/products/mug/"
    assert base.resolve("products/mug/", "https://example.com/shop/categories/cups/") is not None
    for link in ("/products/mug/", "https://other.example/shop/", "http://example.com/shop/", "//cdn.example/x"):
        assert base.resolve(link, base.url) is None, link
    assert base.relative("https://example.com/shop/search/?q=mug") == "search/?q=mug"


@pytest.mark.parametrize("url", ["shop.example", "127.0.0.1:16081", "/shop/", "ftp://shop.example/", "https://"])
def test_a_url_without_a_scheme_and_host_is_refused(url, capsys):
    with pytest.raises(UsageError):
        BaseUrl(url)
    assert main([url]) == 2
    assert "not a full URL" in capsys.readouterr().err


def test_only_and_skip_take_check_names_and_refuse_unknown_ones():
    assert selected_checks(["shared-pages,static-files"], ["static-files"]) == ("shared-pages",)
    assert "browsers" not in selected_checks([], ["browsers"])
    with pytest.raises(UsageError, match="unknown check cache"):
        selected_checks(["cache"], [])


# This stack's: Django's part first (how the copy was made), then Varnish's (how it was served).
STACK_SERVER_TIMING = 'django;desc="MISS";dur=5, varnish;desc="HIT", varnish-age;desc="3"'


def _answer(**headers):
    return SimpleNamespace(headers=headers)


@pytest.mark.parametrize(
    ("headers", "source", "hit"),
    [
        ({"X-Cache": "HIT", "Age": "0"}, "X-Cache", True),
        ({"X-Cache": "MISS", "Age": "30"}, "X-Cache", False),  # Age from Django's cache, not the edge
        ({"X-Cache": "HIT, MISS"}, "X-Cache", False),  # the last value is the outermost cache
        ({"X-Cache": "Hit from cloudfront"}, "X-Cache", True),
        ({"CF-Cache-Status": "HIT"}, "CF-Cache-Status", True),
        ({"Server-Timing": "cdn-cache; desc=HIT, edge; dur=2"}, "Server-Timing", True),
        ({"Server-Timing": "hit-state;desc=MISS", "Age": "4"}, "Server-Timing", False),
        ({"Server-Timing": "db; dur=3", "Age": "4"}, "Age", True),
        ({"Server-Timing": STACK_SERVER_TIMING}, "Server-Timing", True),
        ({"Server-Timing": 'django;desc="HIT";dur=1, varnish;desc="MISS"'}, "Server-Timing", False),
        ({"Server-Timing": 'django;desc="HIT";dur=1', "Age": "0"}, "Age", None),  # the app's cache is no edge
        ({"Age": "0"}, "Age", None),  # too young to tell: the check asks again a second later
        ({}, "", False),
    ],
)
def test_an_edge_hit_is_told_by_the_most_explicit_header(headers, source, hit):
    signal = edge_signal(_answer(**headers))

    assert (signal.source, signal.hit) == (source, hit)


def test_a_growing_age_is_a_hit_and_any_cache_mark_on_a_private_answer_is_found():
    assert edge_signal(_answer(Age="0"), _answer(Age="0")).hit is None
    assert edge_signal(_answer(Age="3"), _answer(Age="2")).hit is True
    assert from_cache(_answer(**{"X-Cache": "MISS", "Age": "0"})) == ""
    assert from_cache(_answer(**{"X-Cache": "MISS", "Age": "7"})) == "Age: 7"
    assert from_cache(_answer(**{"X-Cache": "HIT"})) == "X-Cache: HIT"


def test_requests_are_spaced_by_the_delay_across_clients():
    pacer = Pacer(0.05)
    began = time.monotonic()
    for _ in range(3):
        pacer.wait()
        pacer.done()

    assert time.monotonic() - began >= 0.1
    assert pacer.count == 3


def test_forms_are_read_as_a_browser_submits_them():
    page = parse(
        '<form id="f" method="post" action="/x/"><input type="hidden" name="csrfmiddlewaretoken" value="t">'
        '<input name="price" value="1.20"><input type="checkbox" name="on" checked><input type="checkbox" name="off">'
        '<select name="category"><option value="1">a</option><option value="2" selected>b</option></select>'
        '<textarea name="text">\nline</textarea><input type="file" name="image"><button name="go">Go</button></form>'
        "<p data-price>€1.20</p>"
    )
    [form] = page.forms

    expected = [("csrfmiddlewaretoken", "t"), ("price", "1.20"), ("on", "on"), ("category", "2"), ("text", "line")]
    assert form.fields == expected
    assert dict(form.replaced(price="2.31"))["price"] == "2.31"
    assert page.first(attr="data-price").text == "€1.20"


# ------------------------------------------------------------------------------------------------
# Against the stack
# ------------------------------------------------------------------------------------------------


@pytest.mark.stack
@pytest.mark.browser
def test_e2e_passes_against_the_stack_with_every_check(stack, catalog, tmp_path):
    junit = tmp_path / "e2e.xml"
    status, output = _run_e2e(stack.url("/"), catalog=catalog, admin=True, junit=junit)

    assert status == 0, output
    suite = ET.parse(junit).getroot().find("testsuite")
    assert (suite.get("failures"), suite.get("skipped")) == ("0", "0"), output
    ran = {case.get("classname").removeprefix("e2e.") for case in suite.iter("testcase")}
    assert ran >= {"shared-pages", "private-pages", "cart-isolation", "no-js-add", "static-files", "browsers"}
    assert {"security-headers", "not-found", "head", "admin-purge"} <= ran
    assert "edge hits told by: X-Cache" in output


@pytest.mark.stack
@pytest.mark.browser
def test_e2e_passes_through_a_pass_through_proxy(stack, catalog):
    with PassThroughEdge(stack.varnish_port) as edge:
        status, output = _run_e2e(edge.url, catalog=catalog)

    assert status == 0, output
    assert _rows(output)["browsers[add]"][0] == "PASS"
    assert _rows(output)["admin-purge"][1].startswith("not run: no admin credentials")


@pytest.mark.stack
def test_e2e_passes_under_a_base_path_and_stays_in_it(stack, catalog):
    with BasePathEdge(stack.varnish_port) as edge:
        status, output = _run_e2e(edge.url, "--skip", "browsers", catalog=catalog, admin=True)

    assert status == 0, output
    assert edge.url.endswith("/shop/")
    assert f"product {edge.url}products/" in output


@pytest.mark.stack
@pytest.mark.parametrize(("hidden", "told_by"), [(["X-Cache"], "Server-Timing"), (["X-Cache", "Server-Timing"], "Age")])
def test_e2e_tells_a_hit_from_whichever_header_the_edge_passes_on(stack, catalog, hidden, told_by):
    with HidingEdge(stack.varnish_port, hidden) as edge:
        status, output = _run_e2e(edge.url, "--only", "shared-pages,private-pages", catalog=catalog)

    assert status == 0, output
    assert f"edge hits told by: {told_by}\n" in output
    assert _rows(output)["shared-pages[product]"][1].startswith(f"edge hit: {told_by}: "), output


@pytest.mark.stack
def test_e2e_checks_certificates_unless_told_not_to(stack, catalog, tmp_path):
    reads = "shared-pages,private-pages,static-files,security-headers,head"
    with TlsEdge(stack.varnish_port, tmp_path) as edge:
        refused = _run_e2e(edge.url, "--only", "head")
        accepted = _run_e2e(edge.url, "--insecure", "--only", reads, catalog=catalog)
        # TLS ends at this edge, and nothing tells Django (HTTPS=1 behind Varnish's tls listener):
        # it sees an https Origin on a plain-http request and refuses every POST.
        posts = _run_e2e(edge.url, "--insecure", "--only", "cart-isolation,no-js-add", catalog=catalog)

    assert refused[0] == 1 and "CERTIFICATE_VERIFY_FAILED" in _rows(refused[1])["discover"][1], refused[1]
    assert accepted[0] == 0, accepted[1]
    assert "certificates not checked" in accepted[1]
    assert posts[0] == 1 and _failed(posts[1]) == {"cart-isolation", "no-js-add"}, posts[1]
    assert "status 403" in _rows(posts[1])["no-js-add"][1]


@pytest.mark.stack
def test_e2e_fails_on_an_edge_that_sets_cookies_on_shared_pages(stack, catalog):
    with CookieLeakingEdge(stack.varnish_port) as edge:
        status, output = _run_e2e(edge.url, "--only", "shared-pages", catalog=catalog)

    assert status == 1, output
    labels = ("home", "category", "category-page", "product", "search")
    assert _failed(output) == {f"shared-pages[{label}]" for label in labels}
    home = _rows(output)["shared-pages[home]"][1]
    assert home.startswith(f"{edge.url}: Set-Cookie: edge_visitor=1"), output
    assert re.search(rf"^\s+{re.escape(edge.url)}: Vary: .*Cookie$", output, re.MULTILINE), output


@pytest.mark.stack
@pytest.mark.browser
def test_e2e_fails_on_an_edge_that_serves_one_cart_to_everyone(stack, catalog):
    with SharedCartEdge(stack.varnish_port) as edge:
        status, output = _run_e2e(edge.url, "--only", "cart-isolation,browsers", catalog=catalog)

    assert status == 1, output
    # The badges come from each browser's hint cookie, which the replay does not touch; the API does not.
    assert {"cart-isolation", "browsers[cart-api]"} <= _failed(output), output
    assert "the shopper's cart says count 0 after adding 2" in _rows(output)["cart-isolation"][1]


@pytest.mark.stack
def test_e2e_fails_on_an_edge_that_makes_static_files_mutable(stack, catalog):
    with MutableStaticEdge(stack.varnish_port) as edge:
        status, output = _run_e2e(edge.url, "--only", "static-files", catalog=catalog)

    assert status == 1, output
    assert _failed(output) == {name for name in _rows(output) if name.startswith("static-files[")}, output
    stylesheet = r"static/shop/store\.[0-9a-f]{12}\.css"
    assert re.search(rf"{stylesheet}: Cache-Control: public, max-age=31536000 \(no immutable\)", output), output
