"""A small shop's views as a newcomer writes them, declared with pagecache's decorators."""

import json

from django.http import JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_http_methods

from pagecache.decorators import private_page, shared_page
from pagecache.hint import set_hint

from .models import Product


@shared_page
def product(request, slug):
    return render(request, "catalog/product.html", {"product": get_object_or_404(Product, slug=slug)})


def _cart_answer(request):
    cart = request.session.get("cart", {})
    response = JsonResponse({"count": sum(cart.values()), "items": cart})
    set_hint(request, response, sum(cart.values()))
    return response


@private_page
@ensure_csrf_cookie
def cart(request):
    return _cart_answer(request)


@private_page
@require_http_methods(["POST"])
def cart_items(request):
    data = json.loads(request.body)
    product = get_object_or_404(Product, slug=data["product"])
    cart = request.session.get("cart", {})
    cart[product.slug] = cart.get(product.slug, 0) + int(data.get("quantity", 1))
    request.session["cart"] = cart
    return _cart_answer(request)
