from django.apps import AppConfig
from django.db import transaction
from django.db.models.signals import post_delete, post_save


def drop_product_pages(sender, instance, **kwargs):
    """The guide's invalidation template, adapted: a product's page, after the commit."""
    from pagecache.invalidation import drop_everywhere

    urls = [instance.get_absolute_url()]
    transaction.on_commit(lambda: drop_everywhere(urls))


class CatalogConfig(AppConfig):
    name = "catalog"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        post_save.connect(drop_product_pages, sender="catalog.Product")
        post_delete.connect(drop_product_pages, sender="catalog.Product")
