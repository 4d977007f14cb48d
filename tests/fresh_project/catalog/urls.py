from django.urls import path

from . import views

urlpatterns = [
    path("products/<slug:slug>/", views.product, name="product"),
    path("api/cart/", views.cart, name="cart"),
    path("api/cart/items/", views.cart_items, name="cart_items"),
]
