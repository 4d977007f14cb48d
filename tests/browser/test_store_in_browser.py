"""A visitor in a real browser: home, product, add to cart, badge updates without a reload."""

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as expected
from selenium.webdriver.support.ui import WebDriverWait

from tests.factories import CategoryFactory, ProductFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def unhashed_static(settings):
    """The test server finds static files by their source names; the manifest is for Nginx."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def _badge(browser):
    return browser.find_element(By.CSS_SELECTOR, "[data-cart-count]").text


def test_add_to_cart_updates_the_badge_without_a_reload(live_server, new_browser, unhashed_static):
    category = CategoryFactory(name="Kitchen", slug="kitchen")
    ProductFactory(name="Blue Mug", slug="blue-mug", category=category, is_featured=True)
    browser = new_browser()
    wait = WebDriverWait(browser, 10)

    browser.get(live_server.url + "/")
    wait.until(lambda b: _badge(b) == "0")
    browser.find_element(By.LINK_TEXT, "Blue Mug").click()
    wait.until(expected.title_contains("Blue Mug"))
    wait.until(lambda b: _badge(b) == "0")

    browser.execute_script("window.__sameDocument = true")
    browser.find_element(By.CSS_SELECTOR, "form[data-add-to-cart] button").click()
    wait.until(lambda b: _badge(b) == "1")
    assert browser.execute_script("return window.__sameDocument") is True  # no reload happened
    assert "Added to your cart" in browser.find_element(By.CSS_SELECTOR, "[data-add-status]").text

    browser.find_element(By.CSS_SELECTOR, "a.cart-link").click()
    wait.until(expected.title_contains("Your cart"))
    line = browser.find_element(By.CSS_SELECTOR, '[data-cart-line="blue-mug"]')
    assert "Blue Mug" in line.text
    assert _badge(browser) in ("", "1")
    wait.until(lambda b: _badge(b) == "1")
