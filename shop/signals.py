"""Drop cached pages when the catalog changes, after the change is committed.

Signals are the one place where model saves meet the cache (admin, shell, code alike). The work
runs in `transaction.on_commit`: dropping a page before the commit would let a concurrent request
cache the old data again. Which pages show what is decided in shop/invalidation.py.
"""

from django.contrib.auth.signals import user_logged_in
from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from shop import invalidation
from shop.cart import CART_KEY
from shop.models import Cart, Category, Product


@receiver(pre_save, sender=Product)
def remember_old_product_place(sender, instance, raw=False, **kwargs):
    """Keep the slug and category a product had, so its old pages are dropped too."""
    instance._old_place = None
    if instance.pk and not raw:
        instance._old_place = (
            Product.objects.filter(pk=instance.pk).values_list("slug", "category_id").first()
        )


@receiver(post_save, sender=Product)
@receiver(post_delete, sender=Product)
def drop_product_pages(sender, instance, raw=False, **kwargs):
    if raw:
        return
    old_slug, old_category = None, None
    if getattr(instance, "_old_place", None):
        old_slug, old_category_id = instance._old_place
        if old_category_id != instance.category_id:
            old_category = Category.objects.filter(pk=old_category_id).first()
    transaction.on_commit(lambda: invalidation.invalidate_product(instance, old_slug, old_category))


@receiver(pre_save, sender=Category)
def remember_old_category_slug(sender, instance, raw=False, **kwargs):
    """Keep the slug a category had, so the listing under its old URL is dropped too."""
    instance._old_slug = None
    if instance.pk and not raw:
        instance._old_slug = Category.objects.filter(pk=instance.pk).values_list("slug", flat=True).first()


@receiver(post_save, sender=Category)
@receiver(post_delete, sender=Category)
def drop_category_pages(sender, instance, raw=False, **kwargs):
    if raw:
        return
    slugs = list(Product.objects.filter(category_id=instance.pk).values_list("slug", flat=True))
    old_slug = getattr(instance, "_old_slug", None)
    transaction.on_commit(lambda: invalidation.invalidate_category(instance, slugs, old_slug))


@receiver(user_logged_in)
def keep_the_cart_across_login(sender, request, user, **kwargs):
    """Login gives the session a new key (against session fixation): file the cart under it."""
    old_key, new_key = request.session.get(CART_KEY), request.session.session_key
    if old_key and old_key != new_key:
        Cart.objects.filter(session_key=old_key).update(session_key=new_key)
        request.session[CART_KEY] = new_key
