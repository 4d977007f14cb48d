"""The store's URLs, unchanged and first, then the rows only the benchmark needs."""

from django.urls import path

from bench import app
from config.urls import handler404, handler500  # noqa: F401
from config.urls import urlpatterns as store_urlpatterns

urlpatterns = [
    *store_urlpatterns,
    path("bench/bare/", app.bare),
    path("bench/uncached/products/<slug:slug>/", app.uncached_product),
]
