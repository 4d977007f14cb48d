"""Carts over plain HTTP: each visitor sees only their own, and the no-JavaScript add flow works."""

from urllib.parse import urlencode

from e2e import dom
from e2e.html import parse
from e2e.results import row

API_QUANTITY = 2
NO_JS_QUANTITY = 3


def cart_count(client, url):
    """Return (the count the cart API gives this visitor, the response)."""
    response = client.get(url, headers={"Accept": "application/json"})
    try:
        return response.json().get("count"), response
    except ValueError:
        return None, response


def linked_products(client, url, products):
    """Return the products that the page at `url`, as this visitor gets it, links to."""
    response = client.get(url)
    links = {client.base.resolve(href, response.url) for href in parse(response.text).links()}
    return [product for product in products if product.url in links]


def api_add(run, client, product, quantity):
    """Add to the visitor's cart through the add API, as cart.js does; return the response."""
    token = client.cookies.get(dom.CSRF_COOKIE, "")
    return client.post(
        run.site.add_api,
        json={"product": product.api_id, "quantity": quantity},
        headers={dom.CSRF_HEADER: token, "Origin": run.base.origin, "Referer": product.url},
    )


def cart_isolation(run):
    """Check that a visitor's cart is theirs alone: another visitor's API and cart page are empty."""
    site, product = run.site, run.site.products[0]
    shopper = run.visitor_with_cookies("shopper")  # the csrftoken cookie, as cart.js gets it first
    added = api_add(run, shopper, product, API_QUANTITY)
    problems = []
    if added.status_code != 200:
        problems.append(f"POST {site.add_api}: status {added.status_code}: {added.text[:200]}")
    count, _ = cart_count(shopper, site.cart_api)
    if count != API_QUANTITY:
        problems.append(f"{site.cart_api}: the shopper's cart says count {count} after adding {API_QUANTITY}")
    stranger = run.client("stranger")
    stranger_count, answer = cart_count(stranger, site.cart_api)
    if stranger_count != 0:
        problems.append(f"{site.cart_api}: a visitor without cookies got count {stranger_count}: {answer.text[:200]}")
    if linked_products(stranger, site.cart_page, [product]):
        problems.append(f"{site.cart_page}: a visitor without cookies sees the shopper's {product.path}")
    count_again, _ = cart_count(shopper, site.cart_api)
    if count_again != API_QUANTITY:
        problems.append(f"{site.cart_api}: the shopper's cart says count {count_again} after a stranger's visit")
    yield row("cart-isolation", problems, f"shopper {API_QUANTITY}, stranger 0, on the API and the cart page")


def no_js_add(run):
    """Check the add flow without JavaScript: GET the form's action, POST its confirm form, see the line."""
    product = run.site.products[0]
    visitor = run.client("no-JavaScript visitor")
    fields = dict(product.form.replaced(**{dom.QUANTITY_FIELD: str(NO_JS_QUANTITY)}))
    fields.setdefault(dom.ADD_FIELD, product.api_id)
    confirm_url = f"{run.site.cart_page.split('?')[0]}?{urlencode(fields)}"
    confirm = visitor.get(confirm_url)
    page = parse(confirm.text)
    form = next((f for f in page.forms if f.method == "post" and f.value(dom.CSRF_FIELD)), None)
    if confirm.status_code != 200 or form is None:
        yield row("no-js-add", [f"{confirm_url}: status {confirm.status_code}, no POST form with a CSRF token"])
        return
    action = run.base.resolve(form.attrs.get("action") or confirm.url, confirm.url)
    if action is None:
        yield row("no-js-add", [f"{confirm.url}: the confirm form posts off the base URL ({form.attrs.get('action')})"])
        return
    done = visitor.post(action, data=form.fields, headers={"Referer": confirm.url, "Origin": run.base.origin})
    problems = [] if done.status_code == 200 else [f"POST {action}: status {done.status_code}"]
    shown = any(run.base.resolve(href, done.url) == product.url for href in parse(done.text).links())
    if not shown:
        problems.append(f"{done.url}: the cart does not show {product.path} after the confirm form")
    yield row("no-js-add", problems, f"{product.path} x{NO_JS_QUANTITY} in the cart via {run.base.relative(action)}")
