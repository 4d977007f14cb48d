"""The cache contract: shared pages are one copy for everyone, private answers are never shared."""

import time

from e2e import headers
from e2e.cart import api_add
from e2e.results import row

# An Age in whole seconds only grows once a second has passed.
AGE_TICK = 1.1


def shared_pages(run):
    """Check every shared page class: same bytes for two clients, no cookie, cacheable, a hit."""
    first_visitor = run.client("first visitor")
    # A shopper with a cart (session, csrftoken, cart hint): cookies must neither split the cache
    # nor change the page. Whether the add worked is cart-isolation's business, not this check's.
    second_visitor = run.visitor_with_cookies("second visitor")
    api_add(run, second_visitor, run.site.products[0], 1)
    for label, url in run.site.shared.items():
        yield _shared_page(run, f"shared-pages[{label}]", url, first_visitor, second_visitor)


def _shared_page(run, name, url, first_visitor, second_visitor):
    first = first_visitor.get(url)
    second = second_visitor.get(url)
    problems = [f"{url}: status {r.status_code}" for r in (first, second) if r.status_code != 200]
    if first.content != second.content:
        problems.append(f"{url}: two clients got different HTML ({len(first.content)} and {len(second.content)} bytes)")
    for response in (first, second):
        problems += _shared_headers(url, response)
    signal = headers.edge_signal(second, first)
    if signal.source == "Age" and signal.hit is None:
        # Age counts whole seconds: a copy stored a moment ago still says 0.
        time.sleep(AGE_TICK)
        signal = headers.edge_signal(second_visitor.get(url), first)
    if signal.source:
        run.signals.add(signal.source)
    if not signal.hit:
        problems.append(f"{url}: the second request was not an edge hit ({signal.evidence})")
    return row(name, sorted(set(problems), key=problems.index), f"edge hit: {signal.evidence}")


def _shared_headers(url, response):
    """Return what in one answer breaks the shared-page contract."""
    problems = []
    if "Set-Cookie" in response.headers:
        problems.append(f"{url}: Set-Cookie: {response.headers['Set-Cookie']}")
    if headers.varies_on_cookie(response):
        problems.append(f"{url}: Vary: {response.headers['Vary']}")
    why = headers.shared_cacheable(response)
    if why:
        problems.append(f"{url}: {why}")
    return problems


def private_pages(run):
    """Check the cart page and the cart API: private, varied on Cookie, never from a shared cache."""
    shopper = run.visitor_with_cookies("shopper")
    site = run.site
    for label, url in (("cart-page", site.cart_page), ("cart-api", site.cart_api)):
        answers = [shopper.get(url)]
        if label == "cart-api":
            # A second answer a second later: a cached copy would show an Age above 0 by then.
            time.sleep(AGE_TICK)
            answers.append(shopper.get(url))
        problems = [problem for answer in answers for problem in _private_headers(url, answer)]
        yield row(f"private-pages[{label}]", problems, _summary(answers[-1]))


def _private_headers(url, response):
    problems = []
    if response.status_code != 200:
        problems.append(f"{url}: status {response.status_code}")
    why = headers.private_answer(response)
    if why:
        problems.append(f"{url}: {why}")
    if not headers.varies_on_cookie(response):
        problems.append(f"{url}: Vary: {response.headers.get('Vary', '(none)')} (no Cookie)")
    cached = headers.from_cache(response)
    if cached:
        problems.append(f"{url}: answered from a shared cache ({cached})")
    return problems


def _summary(response):
    return f"Cache-Control: {response.headers.get('Cache-Control', '')}; Vary: {response.headers.get('Vary', '')}"
