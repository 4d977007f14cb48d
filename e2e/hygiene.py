"""What every deployment owes its visitors: hashed static files, security headers, a 404, HEAD."""

import re

from e2e import dom, headers
from e2e.html import parse
from e2e.http import raw_head
from e2e.results import row

# collectstatic's hashed names: store.95013cc76c15.css
HASHED_NAME = re.compile(r"\.[0-9a-f]{12}\.\w+$")


def static_files(run):
    """Check the home page's CSS and JS: hashed names, a year and immutable, gzip when asked."""
    site = run.site
    assets = [site.home_page.stylesheets(), site.home_page.scripts()]
    urls = [run.base.resolve(ref, site.home.url) for refs in assets for ref in refs]
    urls = [url for url in dict.fromkeys(urls) if url]
    if not urls:
        yield row("static-files", [f"{site.home.url}: no stylesheet or script under the base URL"])
        return
    client = run.client("static files")
    for url in urls:
        name = url.split("?")[0].rsplit("/", 1)[-1]
        yield row(f"static-files[{name}]", _static_file(client, url, name), "hashed, immutable for a year, gzip")


def _static_file(client, url, name):
    problems = [] if HASHED_NAME.search(name) else [f"{url}: not a hashed name (name.<12 hex>.ext)"]
    response = client.get(url, headers={"Accept-Encoding": "gzip"})
    value = response.headers.get("Cache-Control", "(none)")
    if response.status_code != 200:
        problems.append(f"{url}: status {response.status_code}")
    cc = headers.cache_control(response)
    if "immutable" not in cc:
        problems.append(f"{url}: Cache-Control: {value} (no immutable)")
    if (headers.seconds(cc, "max-age") or 0) < headers.ONE_YEAR:
        problems.append(f"{url}: Cache-Control: {value} (max-age below {headers.ONE_YEAR})")
    encoding = response.headers.get("Content-Encoding", "(none)")
    if encoding.lower() != "gzip":
        problems.append(f"{url}: Content-Encoding: {encoding} when asked for gzip")
    return problems


def security_headers(run):
    """Check the security headers on a shared page, a product, the cart page and the 404."""
    site = run.site
    client = run.client("security headers")
    pages = {"home": site.home.url, "product": site.products[0].url, "cart-page": site.cart_page}
    pages["404"] = run.base.join(dom.MISSING_PAGE)
    for label, url in pages.items():
        response = client.get(url)
        problems = _missing_headers(url, response)
        yield row(f"security-headers[{label}]", problems, "nosniff, Referrer-Policy, frames, CSP")


def _missing_headers(url, response):
    got = response.headers
    problems = []
    if got.get("X-Content-Type-Options", "").strip().lower() != "nosniff":
        problems.append(f"{url}: X-Content-Type-Options: {got.get('X-Content-Type-Options', '(none)')}")
    if not got.get("Referrer-Policy", "").strip():
        problems.append(f"{url}: no Referrer-Policy")
    csp = got.get("Content-Security-Policy", "")
    if not csp.strip():
        problems.append(f"{url}: no Content-Security-Policy")
    frames = got.get("X-Frame-Options", "").strip().upper() in ("DENY", "SAMEORIGIN")
    if not frames and "frame-ancestors" not in csp:
        problems.append(f"{url}: X-Frame-Options: {got.get('X-Frame-Options', '(none)')} and no CSP frame-ancestors")
    return problems


def not_found(run):
    """Check that a made-up URL answers the store's own 404 page: HTML, styled, not a 5xx."""
    url = run.base.join(dom.MISSING_PAGE)
    response = run.client("404").get(url)
    problems = [] if response.status_code == 404 else [f"{url}: status {response.status_code}, not 404"]
    content_type = response.headers.get("Content-Type", "(none)")
    if "text/html" not in content_type:
        problems.append(f"{url}: Content-Type: {content_type}")
    elif not parse(response.text).stylesheets():
        problems.append(f"{url}: an unstyled page (no stylesheet): a server's default 404, not the store's")
    yield row("not-found", problems, f"404, {content_type}, styled")


def head(run):
    """Check that HEAD of a page answers 200 with the headers and no body."""
    for label in ("home", "product"):
        url = run.site.shared[label]
        status, header_block, body = raw_head(run.settings, run.pacer, url)
        problems = [] if status == 200 else [f"HEAD {url}: status {status}"]
        if body:
            problems.append(f"HEAD {url}: {len(body)} bytes of body after the headers")
        if "content-type:" not in header_block.lower():
            problems.append(f"HEAD {url}: no Content-Type")
        yield row(f"head[{label}]", problems, "200, headers only")
