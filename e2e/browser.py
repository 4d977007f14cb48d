"""Two real browsers (headless Chromium through Selenium): each sees its own cart on every page."""

import shutil
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from e2e import dom
from e2e.cart import cart_count, linked_products
from e2e.http import OffBase
from e2e.results import row

CHROMEDRIVER = "/usr/bin/chromedriver"  # Debian's, never downloaded
CHROMIUM = "/usr/bin/chromium"
# The flags of tests/browser/conftest.py, so these browsers behave as the suite's do.
FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--no-first-run",
    "--disable-sync", "--window-size=1280,900",
)  # fmt: skip
BADGE_SECONDS = 10  # the longest wait for the script to write a badge
SETTLED_SECONDS = 1.5  # a badge unchanged this long has its final count
QUANTITIES = (2, 3)  # different, so a badge showing the other browser's count is caught

# Ask from inside the page, with the browser's own cookies and past its HTTP cache.
FETCH_CART = """
const [url, done] = [arguments[0], arguments[arguments.length - 1]];
fetch(url, {credentials: "same-origin", cache: "no-store", headers: {Accept: "application/json"}})
  .then((r) => r.json()).then((body) => done({count: body.count}))
  .catch((error) => done({error: String(error)}));
"""
FETCH_PAGE = """
const done = arguments[arguments.length - 1];
fetch(location.href, {cache: "no-store"}).then((r) => r.text()).then((body) => done({body}))
  .catch((error) => done({error: String(error)}));
"""


class Browser:
    """One headless Chromium with a profile of its own (its own cookies), paced like every request."""

    def __init__(self, run, name):
        self.run, self.name = run, name
        self.profile = tempfile.mkdtemp(prefix="e2e-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (*FLAGS, f"--user-data-dir={self.profile}"):
            options.add_argument(flag)
        if run.settings.insecure:
            options.add_argument("--ignore-certificate-errors")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        try:
            self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        except BaseException:
            shutil.rmtree(self.profile, ignore_errors=True)
            raise
        self.driver.set_page_load_timeout(30)
        self.errors = []

    def open(self, url):
        if not self.run.base.within(url):
            raise OffBase(f"refusing {url}: not under {self.run.base}")
        self.run.pacer.wait()
        try:
            self.driver.get(url)
        finally:
            self.run.pacer.done()

    def badge(self):
        found = self.driver.find_elements(By.CSS_SELECTOR, dom.BADGE)
        return found[0].text.strip() if found else "(no badge)"

    def badge_shows(self, count):
        """Wait until the badge shows `count`, or settles on another count; return what it shows."""
        deadline = time.monotonic() + BADGE_SECONDS
        seen, since = None, time.monotonic()
        while True:
            shown = self.badge()
            if shown == str(count) or time.monotonic() > deadline:
                return shown
            if shown != seen:
                seen, since = shown, time.monotonic()
            elif shown and time.monotonic() - since >= SETTLED_SECONDS:
                # A wrong count that stays put is the answer: no need to wait out the deadline.
                return shown
            time.sleep(0.1)

    def add(self, product, quantity):
        """Add `quantity` of the product with its page's form, as a shopper does; return the badge."""
        self.open(product.url)
        field = self.driver.find_element(By.CSS_SELECTOR, dom.QUANTITY)
        field.clear()
        field.send_keys(str(quantity))
        self.driver.find_element(By.CSS_SELECTOR, dom.SUBMIT).click()
        return self.badge_shows(quantity)

    def script(self, source, *args):
        answer = self.driver.execute_async_script(source, *args)
        if "error" in answer:
            raise RuntimeError(f"browser {self.name}: fetch failed: {answer['error']}")
        return answer

    def links(self):
        """Return the URLs the current page links to, under the base."""
        hrefs = [a.get_attribute("href") for a in self.driver.find_elements(By.CSS_SELECTOR, "a[href]")]
        return {href.split("#")[0] for href in hrefs if href and self.run.base.within(href)}

    def collect_errors(self):
        self.errors += [e["message"] for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]

    def close(self):
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)


def browsers(run):
    """Check two browsers, each adding a different quantity, and a third visitor without cookies."""
    products = run.site.products
    if len(products) < 2:
        yield row("browsers", ["two products with an add form are needed; discovery found one"])
        return
    shoppers = []
    try:
        for name, product, quantity in zip("AB", products, QUANTITIES, strict=False):
            shoppers.append((Browser(run, name), product, quantity))
        yield row("browsers[add]", [_added(b, p, q) for b, p, q in shoppers], "A's badge 2, B's badge 3")
        yield row("browsers[every-page]", _every_page(run, shoppers), "each badge its own count on 5 pages")
        yield row("browsers[cart-page]", _cart_pages(run, shoppers), "each cart page lists its own product only")
        yield row("browsers[cart-api]", _cart_api(run, shoppers), "each browser's API answer is its own cart")
        yield row("browsers[same-html]", _same_html(run, shoppers), "one shared product page, byte for byte")
        yield row("browsers[stranger]", _stranger(run, products), "a visitor without cookies has an empty cart")
        for browser, _, _ in shoppers:
            browser.collect_errors()
        errors = [f"browser {b.name}: {message}" for b, _, _ in shoppers for message in b.errors]
        yield row("browsers[console]", errors, "no JavaScript errors")
    finally:
        for browser, _, _ in shoppers:
            browser.close()


def _added(browser, product, quantity):
    shown = browser.add(product, quantity)
    if shown != str(quantity):
        return f"{product.url}: browser {browser.name}'s badge shows {shown!r} after adding {quantity}"
    return ""


def _every_page(run, shoppers):
    site = run.site
    names, products = [b.name for b, _, _ in shoppers], [p for _, p, _ in shoppers]
    other = dict(zip(names, reversed(products), strict=True))  # each browser's other product
    problems = []
    for page in ("home", "category", "category-page", "other product", "cart page"):
        for browser, _, quantity in shoppers:
            url = {"other product": other[browser.name].url, "cart page": site.cart_page}.get(page) or site.shared[page]
            browser.open(url)
            shown = browser.badge_shows(quantity)
            if shown != str(quantity):
                problems.append(f"{url}: browser {browser.name}'s badge shows {shown!r}, not its {quantity}")
    return problems


def _cart_pages(run, shoppers):
    problems = []
    for browser, product, _ in shoppers:
        browser.open(run.site.cart_page)
        links = browser.links()
        if product.url not in links:
            problems.append(f"{run.site.cart_page}: browser {browser.name}'s cart does not list {product.path}")
        for _, other, _ in shoppers:
            if other is not product and other.url in links:
                problems.append(f"{run.site.cart_page}: browser {browser.name} sees the other cart's {other.path}")
    return problems


def _cart_api(run, shoppers):
    problems = []
    for browser, _, quantity in shoppers:
        count = browser.script(FETCH_CART, run.site.cart_api).get("count")
        if count != quantity:
            problems.append(f"{run.site.cart_api}: browser {browser.name} gets count {count}, not its {quantity}")
    return problems


def _same_html(run, shoppers):
    url = run.site.shared["product"]
    bodies = []
    for browser, _, _ in shoppers:
        browser.open(url)
        bodies.append(browser.script(FETCH_PAGE)["body"])
    if len(set(bodies)) > 1:
        return [f"{url}: the two browsers got different HTML ({', '.join(str(len(b)) for b in bodies)} characters)"]
    return []


def _stranger(run, products):
    stranger = run.client("third visitor")
    count, _ = cart_count(stranger, run.site.cart_api)
    problems = [] if count == 0 else [f"{run.site.cart_api}: count {count} for a visitor without cookies"]
    for product in linked_products(stranger, run.site.cart_page, products):
        problems.append(f"{run.site.cart_page}: a visitor without cookies sees {product.path}")
    return problems
