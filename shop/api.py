"""The cart's JSON API (docs/design.md): small, never cached, called with fetch() by pagecache/cart.js.

Every answer is the cart as JSON, or `{"error": "..."}` with the status that says what went wrong.
A refused request changes nothing: each change runs in one transaction (see shop/cart.py). Every
cart answer also sets the hint cookie (pagecache/hint.py), from which shared pages show the count
without calling here: the script calls only to add, to get the CSRF cookie before its first add,
and to check a hint past its refresh time.
"""

import json
from functools import partial, wraps

from django.core.exceptions import SuspiciousOperation
from django.http import JsonResponse, QueryDict
from django.views.decorators.csrf import ensure_csrf_cookie

from pagecache.decorators import private_page
from pagecache.hint import set_hint
from shop import cart as carts
from shop.idempotency import idempotent

# The largest request body the API reads (bytes); a cart change is a few dozen bytes.
MAX_BODY_BYTES = 4096
# Where the API lives: every answer under it is JSON, errors included (shop/views.py's 404 and
# 500, shop/middleware.py's 503, pagecache's CSRF failure through PAGECACHE_JSON_PATHS).
API_PREFIX = "/api/"


def answers_json(request):
    """Tell whether this request is for the API, whose every answer is JSON."""
    return request.path.startswith(API_PREFIX)


def error(message, status):
    return JsonResponse({"error": message}, status=status)


def allow_methods(*methods):
    """Answer other methods with a JSON 405 that lists the allowed ones."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method not in methods:
                response = error(f"Method {request.method} is not allowed here; use {', '.join(methods)}.", 405)
                response["Allow"] = ", ".join(methods)
                return response
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def refuse_cart_errors(view):
    """Turn a refused cart change into its JSON error; nothing was changed."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except carts.CartError as exc:
            return error(str(exc), exc.status)

    return wrapper


def read_body(request):
    """Return the request's fields from a JSON object or a form body; raise CartError if bad."""
    if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_BODY_BYTES:
        raise carts.CartError(f"The request body is larger than {MAX_BODY_BYTES} bytes.")
    content_type = request.content_type or ""
    if content_type == "application/json":
        try:
            data = json.loads(request.body)
        except ValueError:  # also UnicodeDecodeError
            raise carts.CartError("The request body is not valid JSON.") from None
        except RecursionError:  # arrays or objects nested too deep for the parser
            raise carts.CartError("The request body is nested too deep.") from None
        if not isinstance(data, dict):
            raise carts.CartError("The request body must be a JSON object.")
        return data
    if content_type in ("application/x-www-form-urlencoded", "multipart/form-data") or not request.body:
        try:
            fields = request.POST if request.method == "POST" else QueryDict(request.body)
        except SuspiciousOperation as exc:  # too many fields, or a body past Django's limit
            raise carts.CartError(f"The form body was refused: {exc}") from None
        data = {key: fields.get(key) for key in fields}
        if "quantity" in data:
            data["quantity"] = carts.form_quantity(data["quantity"])
        return data
    raise carts.CartError("Send the body as application/json or as a form.")


def cart_response(request, cart):
    """Answer the cart as JSON, with the hint cookie that lets shared pages show its count."""
    body = carts.summary(cart)
    return set_hint(request, JsonResponse(body), body["count"])


@private_page
@ensure_csrf_cookie  # the page's script needs the token for its POSTs; this call hands it out
@allow_methods("GET", "HEAD")
def cart_detail(request):
    """GET /api/cart/: the visitor's cart (empty, and no session made, for a new visitor)."""
    return cart_response(request, carts.get_cart(request))


def _replayed(request, response):
    """Finish a replayed answer: a cart answer sets the hint cookie, as the first one did."""
    if response.status_code == 200:
        set_hint(request, response, json.loads(response.content)["count"])
    return response


@private_page
@allow_methods("POST")
@partial(idempotent, on_replay=_replayed)
@refuse_cart_errors
def cart_items(request):
    """POST /api/cart/items/ {"product": slug, "quantity": N}: add N (default 1)."""
    data = read_body(request)
    carts.sellable_product(data.get("product"))  # refuse before a session or cart is made
    cart = carts.get_cart(request, create=True)
    carts.add_product(cart, data.get("product"), data.get("quantity", 1))
    return cart_response(request, cart)


@private_page
@allow_methods("PATCH", "DELETE")
@partial(idempotent, on_replay=_replayed)
@refuse_cart_errors
def cart_item(request, slug):
    """PATCH {"quantity": N} sets a line (0 removes it); DELETE removes it."""
    cart = carts.get_cart(request)
    if request.method == "PATCH":
        data = read_body(request)
        if "quantity" not in data:
            raise carts.CartError('Send {"quantity": N}.')
        quantity = carts.parse_quantity(data["quantity"], allow_zero=True)
        if cart is None and quantity == 0:
            raise carts.ProductNotFound(f'"{slug}" is not in your cart.')
        carts.sellable_product(slug)
        cart = cart or carts.get_cart(request, create=True)
        carts.set_quantity(cart, slug, quantity)
    else:
        if cart is None:
            raise carts.ProductNotFound(f'"{slug}" is not in your cart.')
        carts.remove_product(cart, slug)
    return cart_response(request, cart)
