"""Optional: change a price in Django's admin and see it through the edge within a bound, then undo it."""

import re
import time
from decimal import Decimal, InvalidOperation
from urllib.parse import urlencode

from e2e import dom
from e2e.html import parse
from e2e.results import not_run, row

PRICE_STEP = Decimal("1.11")


class AdminError(RuntimeError):
    """The admin did not let the check log in, find the product or save it."""


def admin_purge(run):
    """Check that an admin price change shows through the edge within E2E_PURGE_SECONDS, and its undo."""
    settings = run.settings
    if not settings.has_admin:
        yield not_run("admin-purge", "no admin credentials (E2E_ADMIN_USER, E2E_ADMIN_PASSWORD)")
        return
    product = run.site.products[0]
    admin = run.client("admin")
    _log_in(run, admin)
    change_url = _change_url(run, admin, product)
    old_price = _change_form(admin, change_url).value(dom.ADMIN_PRICE_FIELD)
    new_price = str(Decimal(old_price) + PRICE_STEP)
    try:
        _save(run, admin, change_url, new_price)
        yield _shows(run, "admin-purge[changed]", product.url, new_price)
    finally:
        # Put the price back whatever happened: the check must leave the catalog as it found it.
        _save(run, admin, change_url, old_price)
    yield _shows(run, "admin-purge[restored]", product.url, old_price)


def _log_in(run, admin):
    login_url = run.base.join(dom.ADMIN_LOGIN)
    page = admin.get(login_url)
    form = next((f for f in parse(page.text).forms if f.value(dom.CSRF_FIELD) is not None), None)
    if page.status_code != 200 or form is None:
        raise AdminError(f"{login_url}: status {page.status_code}, no login form")
    fields = form.replaced(username=run.settings.admin_user, password=run.settings.admin_password)
    action = run.base.resolve(form.attrs.get("action") or page.url, page.url) or login_url
    done = admin.post(action, data=fields, headers={"Referer": page.url, "Origin": run.base.origin}, follow=False)
    if done.status_code != 302 or dom.ADMIN_LOGIN in done.headers.get("Location", ""):
        raise AdminError(f"{login_url}: login refused (status {done.status_code}): check E2E_ADMIN_USER/PASSWORD")


def _change_url(run, admin, product):
    """Return the URL of the product's change form, found by its slug in the admin's list."""
    slug = product.path.rstrip("/").rsplit("/", 1)[-1]
    listing = run.base.join(dom.ADMIN_PRODUCTS) + "?" + urlencode({dom.ADMIN_SLUG_LOOKUP: slug})
    page = admin.get(listing)
    found = {
        url.split("?")[0]
        for url in (run.base.resolve(href, page.url) for href in parse(page.text).links())
        if url and re.search(r"/\d+/change/", url)
    }
    if page.status_code != 200 or len(found) != 1:
        raise AdminError(f"{listing}: status {page.status_code}, {len(found)} change links for {slug}")
    return found.pop()


def _change_form(admin, change_url):
    page = admin.get(change_url)
    form = next((f for f in parse(page.text).forms if f.value(dom.ADMIN_PRICE_FIELD) is not None), None)
    if page.status_code != 200 or form is None:
        raise AdminError(f"{change_url}: status {page.status_code}, no form with a {dom.ADMIN_PRICE_FIELD} field")
    return form


def _save(run, admin, change_url, price):
    """Save the change form with `price`, multipart as a browser sends it (the form has a file field)."""
    form = _change_form(admin, change_url)
    fields = form.replaced(**{dom.ADMIN_PRICE_FIELD: price, "_save": "Save"})
    saved = admin.post(
        change_url,
        files=[(name, (None, value)) for name, value in fields],
        headers={"Referer": change_url, "Origin": run.base.origin},
        follow=False,
    )
    if saved.status_code != 302:
        errors = [e.text.strip() for e in parse(saved.text).all(cls="errorlist")]
        raise AdminError(f"{change_url}: saving price {price} answered {saved.status_code}: {errors}")


def _shows(run, name, url, price):
    """Return a row: does the product page show `price` through the edge within the bound?"""
    visitor = run.client("visitor after an admin change")
    began = time.monotonic()
    while True:
        response = visitor.get(url)
        shown = displayed_price(response.text)
        waited = time.monotonic() - began
        if shown == Decimal(price):
            return row(name, [], f"€{price} shown after {waited:.1f} s ({_cache_headers(response)})")
        if waited > run.settings.purge_seconds:
            problem = f"{url}: still shows {shown} after {waited:.1f} s, not {price} ({_cache_headers(response)})"
            return row(name, [problem])


def displayed_price(html):
    """Return the price in the page's [data-price] element, or None."""
    element = parse(html).first(attr=dom.PRICE_ATTR)
    match = re.search(r"\d+(?:[.,]\d+)?", element.text if element else "")
    try:
        return Decimal(match.group(0).replace(",", ".")) if match else None
    except InvalidOperation:
        return None


def _cache_headers(response):
    shown = [f"{name}: {response.headers[name]}" for name in ("X-Cache", "Age") if name in response.headers]
    return ", ".join(shown) or "no cache headers"
