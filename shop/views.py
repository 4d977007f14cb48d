"""The store's pages. Thin: read the request, ask the catalog or the cart, render.

Each view carries one decorator from pagecache that says who may keep its answer.
"""

import re

from django.contrib import messages
from django.core.paginator import EmptyPage, PageNotAnInteger, Paginator
from django.db import connection
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from pagecache.decorators import health_check, mark_private, not_found_page, private_page, shared_page
from pagecache.hint import set_hint
from shop import api
from shop import cart as carts
from shop.models import PRODUCTS_PER_PAGE, Category, Product

FEATURED_ON_HOME = 8
SEARCH_MAX_LENGTH = 100


# The one spelling of a page number. Django's paginator also takes "01", "+1", " 1", "1_0" and
# other digits than ASCII: each would be a cached copy of its own that no purge names.
PAGE_NUMBER = re.compile(r"[1-9][0-9]{0,5}")


def _page_of(request, queryset):
    """Return the requested page of a queryset; a page that does not exist, or is misspelt, is a 404."""
    number = request.GET.get("page") or "1"
    if not PAGE_NUMBER.fullmatch(number):
        raise Http404("Page numbers are written 1, 2, 3.")
    paginator = Paginator(queryset, PRODUCTS_PER_PAGE)
    try:
        return paginator.page(number)
    except (EmptyPage, PageNotAnInteger):
        raise Http404("No such page.") from None


# Shared: the same for every visitor, so cached by Django and Varnish (pagecache).
@shared_page
@require_http_methods(["GET", "HEAD"])
def home(request):
    featured = Product.objects.active().filter(is_featured=True).select_related("category")[:FEATURED_ON_HOME]
    return render(request, "shop/home.html", {"categories": Category.objects.all(), "featured": featured})


# Shared: the listing is the same for everyone; `?page=` is part of the key.
@shared_page(query=("page",))
@require_http_methods(["GET", "HEAD"])
def category_detail(request, slug):
    category = get_object_or_404(Category, slug=slug)
    page = _page_of(request, category.products.active().order_by("name"))
    return render(request, "shop/category.html", {"category": category, "page": page})


def _product_last_modified(request, slug):
    """The newest change among what a product page shows: the product and its category."""
    row = Product.objects.active().filter(slug=slug).values_list("updated_at", "category__updated_at").first()
    return max(row) if row else None


# Shared: the add-to-cart form carries no token; the script posts to the private API.
@shared_page(last_modified=_product_last_modified)
@require_http_methods(["GET", "HEAD"])
def product_detail(request, slug):
    product = get_object_or_404(Product.objects.active().select_related("category"), slug=slug)
    return render(request, "shop/product.html", {"product": product, "max_quantity": carts.max_quantity()})


# Shared: the query string is part of the key; the whole group is dropped on any catalog change.
@shared_page(query=("q", "page"), group="search")
@require_http_methods(["GET", "HEAD"])
def search(request):
    query = request.GET.get("q", "").strip()[:SEARCH_MAX_LENGTH]
    page = None
    if query:
        matches = Product.objects.active().filter(Q(name__icontains=query) | Q(description__icontains=query))
        page = _page_of(request, matches.order_by("name"))
    return render(request, "shop/search.html", {"query": query, "page": page})


# Private: the visitor's own cart, with CSRF-protected forms; works without JavaScript. Each
# answer sets the cart hint (pagecache/hint.py), so opening the cart corrects the badge.
@private_page
@require_http_methods(["GET", "HEAD", "POST"])
def cart_page(request):
    if request.method == "POST":
        return _change_cart(request)
    cart = carts.get_cart(request)
    adding = None
    if request.GET.get("add"):
        # The no-JavaScript flow: the product page's form GETs here; confirm with a POST.
        adding = Product.objects.active().filter(slug=request.GET["add"]).first()
        if adding is None:
            raise Http404("No such product.")
    context = {
        "lines": carts.lines(cart),
        "summary": carts.summary(cart),
        "adding": adding,
        "quantity": request.GET.get("quantity") or 1,
        "max_quantity": carts.max_quantity(),
    }
    return set_hint(request, render(request, "shop/cart.html", context), context["summary"]["count"])


def _change_cart(request):
    """Apply one form action to the cart, then redirect (post/redirect/get)."""
    try:
        cart, message = _apply_cart_action(request)
    except carts.CartError as exc:
        cart = carts.get_cart(request)
        context = {
            "lines": carts.lines(cart),
            "summary": carts.summary(cart),
            "error": str(exc),
            "max_quantity": carts.max_quantity(),
        }
        response = render(request, "shop/cart.html", context, status=exc.status)
        return set_hint(request, response, context["summary"]["count"])
    messages.success(request, message)
    return set_hint(request, redirect("cart_page"), carts.count(cart))


def _apply_cart_action(request):
    """Apply the posted action to the visitor's cart; return the cart and what to tell them."""
    action, slug = request.POST.get("action"), request.POST.get("product")
    if action == "add":
        carts.sellable_product(slug)
        quantity = carts.form_quantity(request.POST.get("quantity") or "1")
        cart = carts.get_cart(request, create=True)
        carts.add_product(cart, slug, quantity)
        return cart, "Added to your cart."
    if action not in ("update", "remove"):
        raise carts.CartError("Unknown cart action.")
    cart = carts.get_cart(request)
    if cart is None:
        raise carts.ProductNotFound("Your cart is empty.")
    if action == "update":
        carts.set_quantity(cart, slug, carts.form_quantity(request.POST.get("quantity")))
        return cart, "Cart updated."
    carts.remove_product(cart, slug)
    return cart, "Removed from your cart."


@health_check
def healthz(request):
    """Liveness: the process answers and its database connection works."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return HttpResponse("ok\n", content_type="text/plain")


def page_not_found(request, exception=None):
    """404 in the store's look, cached briefly by Varnish so floods of bad URLs stay cheap; JSON on the API."""
    if api.answers_json(request):
        return mark_private(api.error(f"There is no {request.path} in the cart API.", 404))
    return not_found_page(render(request, "404.html", status=404))


def server_error(request):
    """500 in the store's look, JSON on the API; never cached, no traceback."""
    if api.answers_json(request):
        return mark_private(api.error("Something went wrong on our side; nothing was changed.", 500))
    return mark_private(render(request, "500.html", status=500))
