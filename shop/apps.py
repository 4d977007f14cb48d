from django.apps import AppConfig


class ShopConfig(AppConfig):
    name = "shop"
    verbose_name = "Shop"

    def ready(self):
        # Cache invalidation is triggered by model signals (see shop/signals.py).
        from shop import signals  # noqa: F401
