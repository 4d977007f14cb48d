"""Two visitors in real browsers, through Varnish: one cached page for both, a cart each."""

import re

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = [pytest.mark.stack, pytest.mark.browser]

# Ask for the current page once more from inside the browser: with the browser's own cookies
# (the HttpOnly session too), past its HTTP cache, and with every header readable (same origin).
# Selenium cannot show the headers of the page load itself.
REFETCH_PAGE = """
const done = arguments[arguments.length - 1];
fetch(location.href, {cache: "no-store"})
  .then((r) => r.text().then((body) => done({status: r.status, xCache: r.headers.get("X-Cache"), body})))
  .catch((error) => done({error: String(error)}));
"""
BADGE = re.compile(r"(data-cart-count[^>]*>)[^<]*(<)")


def _badge(browser):
    return browser.find_element(By.CSS_SELECTOR, "[data-cart-count]").text


def _wait_for_badge(browser, count):
    WebDriverWait(browser, 10).until(lambda b: _badge(b) == str(count))


def _add_to_cart(browser, stack, product, quantity):
    """Open the product page and add `quantity` with its form, as a shopper does."""
    browser.get(stack.url(product.path))
    _wait_for_badge(browser, 0)
    field = browser.find_element(By.CSS_SELECTOR, "form[data-add-to-cart] input[name=quantity]")
    field.clear()
    field.send_keys(str(quantity))
    browser.find_element(By.CSS_SELECTOR, "form[data-add-to-cart] button").click()
    _wait_for_badge(browser, quantity)


def _cart_lines(browser):
    """Return {product slug: quantity} from the cart page the browser shows."""
    rows = browser.find_elements(By.CSS_SELECTOR, "[data-cart-line]")
    return {
        row.get_attribute("data-cart-line"): int(
            row.find_element(By.CSS_SELECTOR, "input[name=quantity]").get_attribute("value")
        )
        for row in rows
    }


def _page_without_badge(browser):
    """The document as the browser built it, minus the count that cart.js wrote into it."""
    return BADGE.sub(r"\1\2", browser.execute_script("return document.documentElement.outerHTML"))


def test_two_browsers_get_the_same_cached_page_and_their_own_carts(stack, catalog, new_browser):
    shared, other = catalog.fresh(2)
    a, b = new_browser(), new_browser()
    _add_to_cart(a, stack, shared, 2)
    _add_to_cart(b, stack, other, 1)

    # Both on the same product page: A has loaded it before, so B gets Varnish's copy.
    for browser in (a, b):
        browser.get(stack.url(shared.path))
    _wait_for_badge(a, 2)
    _wait_for_badge(b, 1)
    seen_by_a, seen_by_b = a.execute_async_script(REFETCH_PAGE), b.execute_async_script(REFETCH_PAGE)

    assert seen_by_a["status"] == seen_by_b["status"] == 200, (seen_by_a.get("error"), seen_by_b.get("error"))
    assert seen_by_b["xCache"] == "HIT"
    assert seen_by_a["body"] == seen_by_b["body"]
    assert BADGE.search(seen_by_b["body"]).group(0).endswith("><")  # the HTML carries no count
    assert _page_without_badge(a) == _page_without_badge(b)

    # Each cart page lists only its own visitor's items, and a reload keeps every count.
    for browser, lines, count in ((a, {shared.slug: 2}, 2), (b, {other.slug: 1}, 1)):
        browser.get(stack.url("/cart/"))
        assert _cart_lines(browser) == lines
        _wait_for_badge(browser, count)
        browser.refresh()
        assert _cart_lines(browser) == lines
        _wait_for_badge(browser, count)
        browser.get(stack.url(shared.path))
        browser.refresh()
        _wait_for_badge(browser, count)
