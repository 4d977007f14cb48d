"""Which cached pages show a product or a category: the shop's half of invalidation.

pagecache knows how to drop pages (by URL, by group, at every edge); only the shop knows which
pages show what. Every URL here comes from the models (`get_absolute_url()`) or `reverse()`, so
no URL shape is written twice. Called from shop/signals.py after the commit.
"""

import threading

from django.urls import reverse

from pagecache.invalidation import drop_everywhere
from shop import replicas
from shop.models import Category, Product

# Search results cannot be listed: they are one group, dropped whole on any catalog change.
SEARCH_GROUP = "search"


def invalidate_product(product, old_slug=None, old_category=None):
    """Drop every cached page that shows this product: detail, its listings, home, search."""
    urls = [product.get_absolute_url(), reverse("home"), *product.category.page_urls()]
    if old_slug and old_slug != product.slug:
        urls.append(Product(slug=old_slug).get_absolute_url())
    if old_category is not None and old_category.pk != product.category_id:
        urls += old_category.page_urls()
    _drop_after_replication(urls)


def invalidate_category(category, product_slugs=(), old_slug=None):
    """Drop a category's listing (under its old slug too), home, search and its products' pages."""
    urls = [reverse("home"), *category.page_urls()]
    if old_slug and old_slug != category.slug:
        urls += Category(pk=category.pk, slug=old_slug).page_urls()
    urls += [Product(slug=slug).get_absolute_url() for slug in product_slugs]
    _drop_after_replication(urls)


def _drop(urls):
    drop_everywhere(urls, groups=[SEARCH_GROUP], ban_prefixes=[reverse("search")])


def _drop_after_replication(urls):
    """Drop the pages once the replica has the change; if it is behind, drop them twice.

    A replica behind the primary can still be read by other processes until their next health
    check, and a page rendered from it would cache the old data again. So when the wait times out
    the pages are dropped now and once more when every process must be skipping the replica
    (the "delayed double delete" of cache invalidation).
    """
    caught_up = replicas.wait_for_replica()
    _drop(urls)
    if not caught_up:
        threading.Timer(replicas.replica_settle_seconds(), _drop, (urls,)).start()
