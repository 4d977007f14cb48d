"""The store's URLs, unchanged and first, then the rows only the benchmark needs."""

from django.urls import path

from bench import app, variants
from config.urls import handler404, handler500  # noqa: F401
from config.urls import urlpatterns as store_urlpatterns

urlpatterns = [
    *store_urlpatterns,
    path("bench/bare/", app.bare),
    # The floor stack's copy of a HIT's answer: its bytes and headers, no middleware, no cache.
    path("bench/floor/page/", app.page_copy),
    # ... and the same copy read from one cache backend (BENCH_FLOOR_CACHES) with one get.
    path("bench/floor/cache/<str:alias>/", app.page_from_cache),
    path("bench/uncached/products/<slug:slug>/", app.uncached_product),
    # The seed's variants (bench/variants.py); each stack's BENCH_VARIANT picks its middleware.
    path("bench/seed/products/<slug:slug>/", variants.seed_product),
    path("bench/seed/uncached/products/<slug:slug>/", variants.seed_render),
    path("bench/halfway/products/<slug:slug>/", variants.halfway_product),
    path("bench/halfway/uncached/products/<slug:slug>/", variants.halfway_render),
    # Django's per-site cache keeps what this answers, on the stack with BENCH_VARIANT=site.
    path("bench/site/products/<slug:slug>/", app.uncached_product),
]
