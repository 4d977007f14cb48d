"""Find the sample URLs of a run by reading the home page's links, never leaving the base URL."""

import re
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from e2e import dom
from e2e.html import parse


class DiscoveryError(RuntimeError):
    """The pages do not lead to what the checks need."""


@dataclass
class Product:
    """A product page with an add form: where it is and what its forms say."""

    url: str
    response: object
    page: object
    form: object  # its add-to-cart form

    @property
    def api_id(self):
        """Return the product as the add API takes it."""
        return self.form.attrs.get(dom.ADD_FORM_PRODUCT_ATTR) or self.form.value(dom.ADD_FIELD)

    @property
    def path(self):
        return urlsplit(self.url).path


@dataclass
class Site:
    """What the checks run against: the shared sample URLs and the cart's private URLs."""

    home: object  # the home page's response
    home_page: object
    shared: dict = field(default_factory=dict)  # label -> URL: home, category, category-page, product, search
    products: list = field(default_factory=list)  # Product, two when the catalog allows
    cart_page: str = ""
    cart_api: str = ""
    add_api: str = ""


def discover(base, client, wanted_products=2, max_product_pages=8):
    """Return the Site, from the home page, one category and a few product pages."""
    home = _html(client, base.url)
    home_page = parse(home.text)
    site = Site(home=home, home_page=home_page, shared={"home": base.url})
    links = _links_under(base, home_page, home.url)
    categories = [link for link in links if _is_listing(base, link, dom.CATEGORY_PREFIX)]
    if not categories:
        raise DiscoveryError(f"{home.url}: no link to a category ({dom.CATEGORY_PREFIX}...) under the base URL")
    category = _html(client, categories[0])
    category_page = parse(category.text)
    site.shared["category"] = category.url
    site.shared["category-page"] = _next_page(base, category_page, category.url)
    product_links = [link for link in links if _is_listing(base, link, dom.PRODUCT_PREFIX)]
    product_links += [
        link for link in _links_under(base, category_page, category.url) if _is_listing(base, link, dom.PRODUCT_PREFIX)
    ]
    site.products = _products(client, list(dict.fromkeys(product_links)), wanted_products, max_product_pages)
    site.shared["product"] = site.products[0].url
    site.shared["search"] = _search_url(base, home_page, home.url, site.products[0])
    _private_urls(base, site)
    return site


def _html(client, url):
    response = client.get(url)
    if response.status_code != 200 or "html" not in response.headers.get("Content-Type", ""):
        raise DiscoveryError(f"{url}: {response.status_code} {response.headers.get('Content-Type', '')}")
    return response


def _links_under(base, page, page_url):
    resolved = (base.resolve(href, page_url) for href in page.links())
    return list(dict.fromkeys(url for url in resolved if url))


def _is_listing(base, url, prefix):
    """Return whether `url` is <base>/<prefix><slug>/ (no query: the bare listing)."""
    return re.fullmatch(rf"{re.escape(prefix)}[^/?]+/", base.relative(url)) is not None


def _next_page(base, page, page_url):
    """Return the category's next page when it links one, else its ?page=1 (a key of its own)."""
    for element in page.all("a", "href"):
        if "next" in element.attrs.get("rel", "").split():
            url = base.resolve(element.attrs["href"], page_url)
            if url:
                return url
    return f"{page_url}?{urlencode({dom.PAGE_PARAM: 1})}"


def _products(client, links, wanted, most):
    """Return up to `wanted` products whose pages have an add form, reading at most `most` pages."""
    found = []
    for url in links[:most]:
        response = _html(client, url)
        page = parse(response.text)
        form = next((f for f in page.forms if dom.ADD_FORM_CLASS in f.classes), None)
        if form is not None:
            found.append(Product(url, response, page, form))
        if len(found) == wanted:
            break
    if not found:
        raise DiscoveryError(f"none of {len(links[:most])} product pages has a {dom.ADD_FORM} (all out of stock?)")
    return found


def _search_url(base, page, page_url, product):
    """Return a search for a word of the product's name, through the page's search form."""
    form = next((f for f in page.forms if any(name == dom.SEARCH_FIELD for name, _ in f.fields)), None)
    action = base.resolve(form.attrs.get("action") or page_url, page_url) if form else None
    if action is None:
        raise DiscoveryError(f"{page_url}: no search form (a field named {dom.SEARCH_FIELD!r}) under the base URL")
    words = [w for w in re.split(r"[-_/]", product.path.rstrip("/").rsplit("/", 1)[-1]) if w.isalpha()]
    word = max(words, key=len) if words else "a"
    return f"{action.split('?')[0]}?{urlencode({dom.SEARCH_FIELD: word})}"


def _private_urls(base, site):
    """Fill in the cart URLs from the badge and the add form, or from the store's defaults."""
    badge = site.home_page.first(attr=dom.BADGE_ATTR)
    attrs = badge.attrs if badge else {}
    home_url = site.home.url
    site.cart_api = base.resolve(attrs.get(dom.CART_API_ATTR), home_url) or base.join(dom.CART_API_FALLBACK)
    site.add_api = base.resolve(attrs.get(dom.ADD_API_ATTR), home_url) or base.join(dom.ADD_API_FALLBACK)
    product = site.products[0]
    action = base.resolve(product.form.attrs.get("action"), product.url)
    site.cart_page = action or base.join(dom.CART_PAGE_FALLBACK)
