"""The audit at 100, in a real browser through Varnish: axe-core and the SEO checks on every page class.

axe-core (node_modules/axe-core/axe.min.js, from package-lock.json; `make test` installs it) is
injected into the real page with Selenium and run there, with the store's strict CSP in force:
Selenium's scripts run through DevTools, which CSP does not govern, and axe needs no eval. Any
violation of WCAG 2.x A/AA or of axe's best practices fails the test. The SEO checks are the ones
of Lighthouse's SEO category that need no Lighthouse: status, title, description, lang, viewport,
robots, descriptive and crawlable links.
"""

from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.stack.fixtures import http_session

pytestmark = [pytest.mark.stack, pytest.mark.browser]

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]

RUN_AXE = """
const [tags, done] = arguments;
axe.run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]})
  .then((result) => done({
    version: axe.version,
    passes: result.passes.length,
    violations: result.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.map((n) => n.target.join(" ") + " -> " + n.failureSummary.replace(/\\s+/g, " ")),
    })),
  }))
  .catch((error) => done({error: String(error)}));
"""

# What Lighthouse's SEO audits read from the document.
SEO_FACTS = """
const meta = (name) => [...document.querySelectorAll(`meta[name="${name}" i]`)].map((m) => m.content);
return {
  title: document.title,
  description: meta("description"),
  lang: document.documentElement.getAttribute("lang"),
  viewport: meta("viewport"),
  robots: [...meta("robots"), ...meta("googlebot")],
  canonical: [...document.querySelectorAll('link[rel="canonical"]')].map((l) => l.href),
  links: [...document.querySelectorAll("a")].map((a) => ({
    href: a.getAttribute("href"), text: (a.innerText || "").trim(), label: a.getAttribute("aria-label") || "",
  })),
  h1: [...document.querySelectorAll("h1")].map((h) => h.innerText.trim()),
};
"""

# Lighthouse's `link-text` audit refuses these (its English list), whatever their case.
GENERIC_LINK_TEXTS = {
    "click here", "click this", "go", "here", "information", "learn more", "more", "more info",
    "more information", "right here", "read more", "see more", "start", "this", "link", "click",
}


def _pages(product):
    """Return the path of each shared page class: home, a category, a product, a search."""
    return {
        "home": "/",
        "category": f"/categories/{product.category}/",
        "product": product.path,
        "search": "/search/?q=mug",
    }


def _inject_axe(browser):
    """Load axe-core into the page under test (DevTools runs it: the page's CSP does not apply)."""
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: `make test` installs it, or run `npm ci` in the checkout")
    browser.execute_script(AXE.read_text())


def _axe_violations(browser):
    """Run axe-core on the page the browser shows; return its violations, each as one line."""
    _inject_axe(browser)
    browser.set_script_timeout(60)
    result = browser.execute_async_script(RUN_AXE, AXE_TAGS)
    assert "error" not in result, result
    assert result["passes"] > 20, result  # it did run its rules
    return [f"{v['id']} ({v['impact']}): {v['help']}: {'; '.join(v['nodes'])}" for v in result["violations"]]


def _panel_filled(browser):
    """Wait until the demo's serving panel (if any) has been written, so axe sees the final page."""
    WebDriverWait(browser, 10).until(
        lambda b: all(p.get_attribute("data-serving-state") == "done" for p in b.find_elements(
            By.CSS_SELECTOR, "[data-serving-panel]"))
    )


def _seo_problems(browser, stack, path, cookies=None):
    """Return what Lighthouse's SEO category would fault on this page (an empty list: 100)."""
    return _http_problems(stack, path, cookies) + _document_problems(browser, stack)


def _http_problems(stack, path, cookies):
    """Ask for the page as its visitor does: it must answer 200 and let robots index it."""
    answer = http_session().get(stack.url(path), headers={"Cookie": cookies} if cookies else {})
    problems = [] if answer.status_code == 200 else [f"status {answer.status_code}"]
    if "noindex" in answer.headers.get("X-Robots-Tag", "").lower():
        problems.append(f"X-Robots-Tag: {answer.headers['X-Robots-Tag']}")
    return problems


def _document_problems(browser, stack):
    """Read the document: title, description, lang, viewport, robots, links, canonical, one h1."""
    facts = browser.execute_script(SEO_FACTS)
    problems = []
    if not facts["title"].strip():
        problems.append("no <title>")
    if len(facts["description"]) != 1 or len(facts["description"][0].strip()) < 20:
        problems.append(f"meta description: {facts['description']}")
    if not facts["lang"]:
        problems.append("no lang on <html>")
    if len(facts["viewport"]) != 1 or "width=device-width" not in facts["viewport"][0]:
        problems.append(f"viewport: {facts['viewport']}")
    if any(word in robots.lower() for robots in facts["robots"] for word in ("noindex", "none")):
        problems.append(f"robots: {facts['robots']}")
    problems += _link_problems(browser.current_url, facts["links"])
    problems += [f"canonical {url}" for url in facts["canonical"] if not url.startswith(stack.url("/"))]
    if len(facts["h1"]) != 1:
        problems.append(f"h1: {facts['h1']}")
    return problems


def _link_problems(page_url, links):
    """Links a crawler cannot follow or whose text does not say where they lead."""
    problems = []
    for link in links:
        href, name = link["href"], link["text"] or link["label"]
        if href is None or not href.strip() or href.strip().lower().startswith("javascript:"):
            problems.append(f"uncrawlable link {link}")
            continue
        if not urlsplit(urljoin(page_url, href)).scheme.startswith("http"):
            problems.append(f"link to {href}")
        if not name or name.lower().strip(" .→←›") in GENERIC_LINK_TEXTS:
            problems.append(f"link text {name!r} for {href}")
    return problems


def _audit(browser, stack, path, cookies=None):
    _panel_filled(browser)
    violations = _axe_violations(browser)
    seo = _seo_problems(browser, stack, path, cookies)
    return violations, seo


def test_shared_pages_pass_axe_and_the_seo_checks(stack, catalog, new_browser):
    [product] = catalog.fresh()
    browser = new_browser()
    found = {}
    for name, path in _pages(product).items():
        browser.get(stack.url(path))
        violations, seo = _audit(browser, stack, path)
        if violations or seo:
            found[name] = {"axe": violations, "seo": seo}
    assert found == {}, "\n".join(f"{name}: {problems}" for name, problems in found.items())


def test_the_cart_with_an_item_passes_axe_and_the_seo_checks(stack, catalog, new_browser):
    [product] = catalog.fresh()
    browser = new_browser()
    browser.get(stack.url(product.path))
    browser.find_element(By.CSS_SELECTOR, "form[data-add-to-cart] button").click()
    WebDriverWait(browser, 10).until(
        lambda b: b.find_element(By.CSS_SELECTOR, "[data-cart-count]").text == "1"
    )
    browser.get(stack.url("/cart/"))
    assert browser.find_elements(By.CSS_SELECTOR, f'[data-cart-line="{product.slug}"]')
    cookies = "; ".join(f"{c['name']}={c['value']}" for c in browser.get_cookies())
    violations, seo = _audit(browser, stack, "/cart/", cookies)
    assert violations + seo == [], "\n".join(violations + seo)


def test_descriptions_come_from_the_product_and_the_category(stack, catalog, new_browser):
    [product] = catalog.fresh()
    browser = new_browser()
    browser.get(stack.url(product.path))
    text = browser.find_element(By.CSS_SELECTOR, ".product-description").text
    description = browser.find_element(By.CSS_SELECTOR, 'meta[name="description"]').get_attribute("content")
    assert text.startswith(description.removesuffix("…")), (description, text)
    browser.get(stack.url(f"/categories/{product.category}/"))
    lead = browser.find_element(By.CSS_SELECTOR, ".lead").text
    assert browser.find_element(By.CSS_SELECTOR, 'meta[name="description"]').get_attribute("content") == lead
