"""The demo's serving panel: each browser tells how the page it shows was served, from its own timing.

The panel's frame is part of the shared HTML (the same bytes for every visitor) and shop/panel.js
fills it from the browser's Navigation Timing entry: the Server-Timing that Django and Varnish
wrote, the bytes and the wait. Through the real stack: a first visitor's page is a Varnish MISS
that Django rendered, the next visitor's the HIT of that copy, with the render it came from.
The words are in shadow roots of the panel's lines, so the two browsers' documents stay equal.
"""

import re

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.factories import ProductFactory
from tests.stack.fixtures import http_session
from tests.test_settings import REAL_KEY, _settings

RENDER = r"by Django in (?:\d+ ms|under 1 ms), \d+ queries"
NETWORK = r"; \d+\.\d kB over the network, first byte in (?:\d+ ms|under 1 ms)\.$"
MISS = re.compile(rf"^This page: Varnish MISS, (rendered {RENDER}){NETWORK}")
HIT = re.compile(rf"^This page: Varnish HIT, (\d+) s old, rendered once ({RENDER}){NETWORK}")
NO_REQUEST = "Your cart: in your browser (the badge reads a cookie), no request."
DOCUMENT = "return document.documentElement.outerHTML"


def _panel(browser):
    """Return the panel's two lines once panel.js has written them."""
    WebDriverWait(browser, 10).until(
        lambda b: b.find_element(By.CSS_SELECTOR, "[data-serving-panel]").get_attribute("data-serving-state") == "done"
    )
    # The words are in each line's shadow root (panel.js): the document stays the same for everyone.
    return browser.execute_script(
        "return ['page', 'cart'].map((line) => document.querySelector(`[data-serving-${line}]`).shadowRoot.textContent)"
    )


def _cookie_header(browser):
    return "; ".join(f"{c['name']}={c['value']}" for c in browser.get_cookies())


@pytest.mark.stack
@pytest.mark.browser
def test_the_panel_tells_a_miss_then_the_hit_of_that_copy(stack, catalog, new_browser):
    [product] = catalog.fresh()
    first, second = new_browser(), new_browser()

    # The first visitor: nobody asked for this page yet, so Varnish fetched it and Django rendered it.
    first.get(stack.url(product.path))
    miss_page, miss_cart = _panel(first)
    print(f"\nafter a MISS: {miss_page} {miss_cart}")
    miss = MISS.match(miss_page)
    assert miss, miss_page
    assert miss_cart == NO_REQUEST

    # The second: Varnish's copy, which still says how Django made it.
    second.get(stack.url(product.path))
    hit_page, hit_cart = _panel(second)
    print(f"after a HIT:  {hit_page} {hit_cart}")
    hit = HIT.match(hit_page)
    assert hit, hit_page
    assert hit.group(2) == miss.group(1).removeprefix("rendered ")  # the one render both pages came from
    assert int(hit.group(1)) <= 60
    assert hit_cart == NO_REQUEST

    # Each browser tells its own story, yet their documents are the same: the words are in shadow roots.
    assert first.execute_script(DOCUMENT) == second.execute_script(DOCUMENT)

    # Past Varnish, straight to Nginx: Django answers from its own cache, without a render.
    second.get(stack.nginx_url + product.path)
    direct_page, _ = _panel(second)
    print(f"past Varnish: {direct_page}")
    assert re.match(rf"^This page: no Varnish in front, copied from Django's cache, no render{NETWORK}", direct_page)

    # The first adds to the cart: the panel counts the requests as they happen (CSRF cookie, add).
    first.find_element(By.CSS_SELECTOR, "form[data-add-to-cart] button").click()
    WebDriverWait(first, 10).until(lambda b: _panel(b)[1].startswith("Your cart: 2 requests"))
    print(f"after an add: {_panel(first)[1]}")

    # Two visitors, one with a cart and one without: the same bytes, panel frame included.
    http = http_session()
    pages = [http.get(stack.url(product.path), headers={"Cookie": _cookie_header(b)}) for b in (first, second)]
    assert [(page.status_code, page.headers["X-Cache"]) for page in pages] == [(200, "HIT"), (200, "HIT")]
    assert pages[0].content == pages[1].content
    assert b"data-serving-panel" in pages[0].content


@pytest.mark.stack
@pytest.mark.browser
def test_the_private_cart_page_says_it_was_made_for_you(stack, new_browser):
    browser = new_browser()
    browser.get(stack.url("/cart/"))
    page, cart = _panel(browser)
    print(f"\nthe cart page: {page} {cart}")
    assert re.match(rf"^This page: Varnish PASS \(private, never cached\), rendered by Django in .*{NETWORK}", page)
    assert cart == "Your cart: on this private page, made for you alone."


@pytest.mark.django_db
@pytest.mark.parametrize("on", [True, False])
def test_the_frame_and_the_script_are_in_the_shared_page_only_with_the_setting(client, settings, on):
    settings.SHOP_SERVING_PANEL = on
    ProductFactory(slug="blue-mug")
    for path in ("/", "/products/blue-mug/"):
        page = client.get(path)
        assert page.status_code == 200
        assert ("data-serving-panel" in page.text, "shop/panel." in page.text) == (on, on)
        assert "Cookie" not in page.get("Vary", "")  # the panel reads no visitor state


def test_the_panel_is_on_in_the_demo_and_off_in_production():
    assert _settings(["SHOP_SERVING_PANEL"], SHOP_DEMO="1") == {"SHOP_SERVING_PANEL": True}
    assert _settings(["SHOP_SERVING_PANEL"], SECRET_KEY=REAL_KEY) == {"SHOP_SERVING_PANEL": False}
    assert _settings(["SHOP_SERVING_PANEL"], SECRET_KEY=REAL_KEY, SHOP_SERVING_PANEL="1") == {
        "SHOP_SERVING_PANEL": True
    }
