"""The seed's way, for comparison with ours: bench-only views.

Mounted by bench/urls.py and chosen by bench/settings.py (BENCH_VARIANT), never by the store:

    seed      the seed's code: `django-admin startproject`'s middleware, `@cache_page` on the product
              view, and a header that shows the cart count read from the session, as a 2013 store did
    halfway   the seed's advice done half-way: the count moved to Ajax (the badge fetches the cart API
              on every page), `@cache_page`, but the add form still has `{% csrf_token %}`
    site      Django's per-site cache (UpdateCacheMiddleware first, FetchFromCacheMiddleware last)
              around the store's own product view and templates, without pagecache

The cache lifetime of the seed's `@cache_page(60 * 60)` and of the per-site cache is
BENCH_SEED_SECONDS (3600; the spike sets 10, the TTL every variant gets there). The middleware
lists are in bench/settings.py, which cannot import views.
"""

from django.conf import settings
from django.shortcuts import get_object_or_404, render
from django.views.decorators.cache import cache_page

from shop import cart as carts
from shop.models import Product


def _product(slug):
    return get_object_or_404(Product.objects.active().select_related("category"), slug=slug)


def seed_render(request, slug):
    """Render the product with a header that shows the cart count read from the session."""
    # As a 2013 store did: the session says whether there is a cart, the cart says how much.
    count = carts.count(carts.get_cart(request)) if request.session.get("has_cart") else 0
    return render(request, "bench/seed_product.html", {"product": _product(slug), "cart_count": count})


def halfway_render(request, slug):
    """Render the product with an Ajax badge, but a CSRF token still in the add form."""
    return render(request, "bench/halfway_product.html", {"product": _product(slug)})


def _seed_cache():
    """Return the seed's `cache_page(60 * 60)`, with the lifetime the bench gives it."""
    return cache_page(getattr(settings, "BENCH_SEED_SECONDS", 60 * 60))


seed_product = _seed_cache()(seed_render)
halfway_product = _seed_cache()(halfway_render)
