"""The cart: find a visitor's cart and change it atomically, so concurrent requests lose nothing.

A cart is a row tied to the visitor's session key; its lines are unique per product. Every change
first updates the cart row, which takes its row lock (MariaDB) or the write lock (SQLite in
IMMEDIATE mode), so two requests changing one cart queue instead of racing. Quantities are whole
numbers from 1 to settings.CART_MAX_QUANTITY per line. Prices are never copied into the cart: they
are read from the product when the cart is shown.
"""

import re
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from shop.models import Cart, CartItem, Product


class CartError(Exception):
    """A request the cart refuses; `status` is the HTTP status to answer with."""

    status = 400


class ProductNotFound(CartError):
    status = 404


def max_quantity():
    return settings.CART_MAX_QUANTITY


def form_quantity(text):
    """Turn a form field's digits into an int; anything else is left for parse_quantity to refuse.

    ASCII digits only: str.isdigit() also takes "²" and "①", which int() then refuses.
    """
    if isinstance(text, str) and re.fullmatch(r"[0-9]{1,6}", text.strip()):
        return int(text.strip())
    return text


def parse_quantity(value, *, allow_zero=False):
    """Return `value` as a quantity, or raise CartError with a message a person can act on.

    Only integers pass: not floats (even 2.0), booleans, strings or null. Form values go through
    form_quantity first.
    """
    low = 0 if allow_zero else 1
    message = f"Quantity must be a whole number from {low} to {max_quantity()}."
    if isinstance(value, bool) or not isinstance(value, int):
        raise CartError(message)
    if not low <= value <= max_quantity():
        raise CartError(message)
    return value


def parse_slug(value):
    if not isinstance(value, str) or not value or len(value) > 200:
        raise CartError('"product" must be the slug of a product, e.g. "blue-mug".')
    return value


def sellable_product(slug):
    """Return the active product with this slug, or raise ProductNotFound."""
    product = Product.objects.active().filter(slug=parse_slug(slug)).first()
    if product is None:
        raise ProductNotFound(f'No product "{slug}" is for sale.')
    return product


# The session key the visitor's cart is filed under, kept in the session itself: Django gives a
# session a new key at login, and shop/signals.py then files the cart under the new one.
CART_KEY = "cart_session_key"


def get_cart(request, create=False):
    """Return the visitor's cart; with `create`, make one (and a session) if there is none.

    Without `create` nothing is written and no session is started, so merely looking at the cart
    count costs a visitor no session row and no cookie.
    """
    session = request.session
    # Loading the session (any read does) turns a key that names no live session (planted by
    # someone else, expired, malformed, too long) into no key at all: such a cookie never names
    # a cart, and a cart is made only under a session the server created.
    session.get(CART_KEY)
    key = session.session_key
    if key is None:
        if not create:
            return None
        session["has_cart"] = True  # marks the session modified, so its cookie is sent
        session.save()  # under a new key
        key = session.session_key
    if create:
        session[CART_KEY] = key  # so the cart follows the session when login gives it a new key
    if not create:
        return Cart.objects.filter(session_key=key).first()
    cart, _ = Cart.objects.get_or_create(session_key=key)
    return cart


def _lock(cart):
    """Take the cart's row lock for this transaction and mark it as changed now."""
    Cart.objects.filter(pk=cart.pk).update(updated_at=timezone.now())


def add_product(cart, slug, quantity=1):
    """Add `quantity` of a product to the cart (an atomic increment)."""
    product = sellable_product(slug)
    quantity = parse_quantity(quantity)
    if not product.in_stock:
        raise CartError(f'"{product.name}" is out of stock.')
    with transaction.atomic():
        _lock(cart)
        item, created = CartItem.objects.get_or_create(cart=cart, product=product, defaults={"quantity": quantity})
        if not created:
            grown = CartItem.objects.filter(pk=item.pk, quantity__lte=max_quantity() - quantity).update(
                quantity=F("quantity") + quantity
            )
            if not grown:
                raise CartError(f"At most {max_quantity()} of one product fit in a cart.")


def set_quantity(cart, slug, quantity):
    """Set a product's quantity in the cart; 0 removes the line."""
    quantity = parse_quantity(quantity, allow_zero=True)
    if quantity == 0:
        remove_product(cart, slug)
        return
    product = sellable_product(slug)
    with transaction.atomic():
        _lock(cart)
        CartItem.objects.update_or_create(cart=cart, product=product, defaults={"quantity": quantity})


def remove_product(cart, slug):
    """Remove a product's line from the cart."""
    slug = parse_slug(slug)
    with transaction.atomic():
        _lock(cart)
        deleted, _ = CartItem.objects.filter(cart=cart, product__slug=slug).delete()
    if not deleted:
        raise ProductNotFound(f'"{slug}" is not in your cart.')


def lines(cart):
    """Return the cart's lines whose products are still for sale, with their products."""
    if cart is None:
        return []
    return list(cart.items.filter(product__is_active=True).select_related("product"))


def count(cart):
    """Return how many items the cart holds, counted as summary() counts them (products for sale)."""
    if cart is None:
        return 0
    return cart.items.filter(product__is_active=True).aggregate(total=Sum("quantity"))["total"] or 0


def summary(cart):
    """Describe the cart as the JSON the API answers (docs/design.md: count, items, total)."""
    items = lines(cart)
    total = sum((item.subtotal for item in items), Decimal("0.00"))
    return {
        "count": sum(item.quantity for item in items),
        "items": [
            {
                "product": item.product.slug,
                "name": item.product.name,
                "url": item.product.get_absolute_url(),
                "price": str(item.product.price),
                "quantity": item.quantity,
                "subtotal": str(item.subtotal),
            }
            for item in items
        ],
        "total": str(total),
    }
