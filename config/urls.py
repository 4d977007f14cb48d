"""The store's URLs (docs/design.md). Each view declares its cache class with a pagecache decorator."""

from django.contrib import admin
from django.urls import path

from shop import api, views

urlpatterns = [
    path("", views.home, name="home"),
    path("categories/<slug:slug>/", views.category_detail, name="category_detail"),
    path("products/<slug:slug>/", views.product_detail, name="product_detail"),
    path("search/", views.search, name="search"),
    path("cart/", views.cart_page, name="cart_page"),
    path("api/cart/", api.cart_detail, name="api_cart"),
    path("api/cart/items/", api.cart_items, name="api_cart_items"),
    path("api/cart/items/<slug:slug>/", api.cart_item, name="api_cart_item"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
]

handler404 = "shop.views.page_not_found"
handler500 = "shop.views.server_error"
