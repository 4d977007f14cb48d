"""The cart badge without a request per page view, in real browsers through Varnish.

A shared page costs Django nothing: the badge shows the count from the hint cookie that the cart's
private answers set (pagecache/hint.py), and the script asks the server only to add, to get the
CSRF cookie before a first add, and to check a hint past its refresh time. What each browser's
scripts sent is read from Chromium's performance log (network.py).
"""

import time

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.network import script_requests
from tests.stack.fixtures import Catalog, http_session, wait_until

pytestmark = [pytest.mark.stack, pytest.mark.browser]

CART, ITEMS = "/api/cart/", "/api/cart/items/"
HINT = "cart_hint"


def _badge(browser):
    return browser.find_element(By.CSS_SELECTOR, "[data-cart-count]").text


def _wait_for_badge(browser, count):
    WebDriverWait(browser, 10).until(lambda b: _badge(b) == str(count))


def _browse(browser, stack, paths, count):
    """Open each page: its badge shows `count` as soon as it has loaded, with nothing to wait for."""
    for path in paths:
        browser.get(stack.url(path))
        assert _badge(browser) == str(count), path


def _add(browser, quantity):
    """Add `quantity` with the product page's form, as a shopper does."""
    field = browser.find_element(By.CSS_SELECTOR, "form[data-add-to-cart] input[name=quantity]")
    field.clear()
    field.send_keys(str(quantity))
    browser.find_element(By.CSS_SELECTOR, "form[data-add-to-cart] button").click()


def _pages(products):
    """Eleven shared pages of every kind: home, categories, products, searches."""
    first = ["/", f"/categories/{products[0].category}/", products[0].path, "/search/?q=mug", products[1].path]
    first.append(products[2].path)
    more = [f"/categories/{products[1].category}/", products[3].path, "/search/?q=the", "/", products[0].path]
    return first, more


def _cookie_header(browser, names=None):
    return "; ".join(f"{c['name']}={c['value']}" for c in browser.get_cookies() if names is None or c["name"] in names)


def test_browsing_costs_no_request_and_the_badge_follows_the_cart(stack, catalog, new_browser):
    products = catalog.fresh(4)
    first_pages, more_pages = _pages(products)
    origin = stack.varnish_url
    a = new_browser()

    # A new visitor: no hint, so an empty badge and not one request.
    _browse(a, stack, first_pages, 0)
    assert script_requests(a, origin) == []

    # The first add: the CSRF cookie, then the add; the badge changes in place.
    a.get(stack.url(products[0].path))
    a.execute_script("window.__sameDocument = true")
    _add(a, 3)
    _wait_for_badge(a, 3)
    assert "Added to your cart" in a.find_element(By.CSS_SELECTOR, "[data-add-status]").text
    assert a.execute_script("return window.__sameDocument") is True
    assert script_requests(a, origin) == [("GET", CART), ("POST", ITEMS)]
    _add(a, 1)  # the token is there now: one request
    _wait_for_badge(a, 4)
    assert script_requests(a, origin) == [("POST", ITEMS)]

    # Every page shows the count from the hint, still without a request.
    _browse(a, stack, more_pages, 4)
    assert script_requests(a, origin) == []

    # Varnish drops the hint with every other cookie: the page is the copy everyone gets.
    assert a.get_cookie(HINT)["value"].startswith("4.")
    http = http_session()
    clean = http.get(stack.url(products[2].path))
    for cookies in (_cookie_header(a, {HINT}), _cookie_header(a)):
        with_hint = http.get(stack.url(products[2].path), headers={"Cookie": cookies})
        assert (with_hint.status_code, with_hint.headers["X-Cache"]) == (200, "HIT"), cookies
        assert with_hint.content == clean.content
        assert "Set-Cookie" not in with_hint.headers

    # Another visitor: an empty badge of their own, no request.
    b = new_browser()
    _browse(b, stack, first_pages[:3] + more_pages[:2], 0)
    assert script_requests(b, origin) == []

    # Emptied on the cart page with its form (no JavaScript involved): the next page shows 0.
    a.get(stack.url("/cart/"))
    assert _badge(a) == "4"
    a.find_element(By.CSS_SELECTOR, f'[data-cart-line="{products[0].slug}"] button.link').click()
    WebDriverWait(a, 10).until(lambda browser: "Your cart is empty" in browser.page_source)
    assert _badge(a) == "0"
    assert a.get_cookie(HINT) is None
    _browse(a, stack, [products[1].path, "/"], 0)
    assert script_requests(a, origin) == []


def test_another_tab_shows_the_new_count_at_once(stack, catalog, new_browser):
    [product, other] = catalog.fresh(2)
    browser = new_browser()
    browser.get(stack.url(other.path))
    shop_tab = browser.current_window_handle
    browser.switch_to.new_window("tab")
    browser.get(stack.url(product.path))
    _add(browser, 2)
    _wait_for_badge(browser, 2)

    # The tab left open learns of the add without a reload (BroadcastChannel), and asks nothing.
    browser.switch_to.window(shop_tab)
    _wait_for_badge(browser, 2)
    assert browser.current_url == stack.url(other.path)
    assert script_requests(browser, stack.varnish_url) == [("GET", CART), ("POST", ITEMS)]


# ------------------------------------------------------------------------------------------------
# What the browser did not do: a withdrawn product, an expired session, clearcarts
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def short_catalog(short_session_stack):
    return Catalog(short_session_stack)


def _carts_of(stack, session_key):
    code = f"from shop.models import Cart; print(Cart.objects.filter(session_key='{session_key}').count())"
    return int(stack.manage("shell", "-c", code).strip().splitlines()[-1])


def _wait_past(unix_time):
    wait_until(lambda: time.time() > unix_time, unix_time - time.time() + 5, f"the clock past {unix_time}")


def _added_on_a_fresh_page(stack, catalog, new_browser, quantity):
    """Open a fresh product's page in a new browser, add `quantity` and wait for the badge; return both."""
    [product] = catalog.fresh()
    browser = new_browser()
    browser.get(stack.url(product.path))
    _add(browser, quantity)
    _wait_for_badge(browser, quantity)
    return product, browser


def test_a_change_the_browser_did_not_make_shows_once_the_hint_is_due(short_session_stack, short_catalog, new_browser):
    stack, origin = short_session_stack, short_session_stack.varnish_url
    product, browser = _added_on_a_fresh_page(stack, short_catalog, new_browser, 2)
    refresh_after = int(browser.get_cookie(HINT)["value"].split(".")[1])
    script_requests(browser, origin)

    # The product is withdrawn: the cart counts it no more, the hint does not know.
    withdraw = f"from shop.models import Product; Product.objects.filter(slug='{product.slug}').update(is_active=False)"
    stack.manage("shell", "-c", withdraw)
    if time.time() < refresh_after - 1:
        _browse(browser, stack, ["/"], 2)  # the lag: the hint's count, no request
        assert script_requests(browser, origin) == []

    # Past its refresh time, the next page shows the hint and asks once; the answer corrects both.
    _wait_past(refresh_after)
    browser.get(stack.url("/"))
    _wait_for_badge(browser, 0)
    assert script_requests(browser, origin) == [("GET", CART)]
    assert browser.get_cookie(HINT) is None
    _browse(browser, stack, ["/search/?q=mug", "/"], 0)
    assert script_requests(browser, origin) == []


def test_badge_is_empty_once_the_session_expires_and_after_clearcarts(short_session_stack, short_catalog, new_browser):
    stack, origin = short_session_stack, short_session_stack.varnish_url
    product, browser = _added_on_a_fresh_page(stack, short_catalog, new_browser, 1)
    session, hint = browser.get_cookie("sessionid"), browser.get_cookie(HINT)
    assert abs(hint["expiry"] - session["expiry"]) <= 1  # the hint ends with the session
    script_requests(browser, origin)

    # The session expires: the browser drops both cookies, and the next page shows 0.
    _wait_past(hint["expiry"] + 1)
    _browse(browser, stack, ["/"], 0)
    assert script_requests(browser, origin) == []
    assert browser.get_cookie("sessionid") is None and browser.get_cookie(HINT) is None

    # clearcarts removes the cart of the expired session; the pages stay at 0, still no request.
    assert _carts_of(stack, session["value"]) == 1
    assert "Removed" in stack.manage("clearcarts")
    assert _carts_of(stack, session["value"]) == 0
    _browse(browser, stack, [product.path, "/"], 0)
    assert script_requests(browser, origin) == []
    browser.get(stack.url("/cart/"))
    assert "Your cart is empty" in browser.page_source
    assert _badge(browser) == "0"
