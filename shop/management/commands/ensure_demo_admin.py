"""Make the demo's admin account, so a visitor can change a price and watch it change through the caches.

Demo only (SHOP_DEMO=1): the password is public, printed by `make demo` and `make stack`. The
account is staff with the catalog's permissions only (products and categories: view, change),
never a superuser. Without SHOP_DEMO the command refuses, makes nothing, and shuts any account
that still opens with the public password (a demo once run against this database): it stays,
for the admin's history, but inactive and without a usable password.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "corner-shop-demo"
# The catalog's editor, nothing more: no users, no carts, no deleting.
DEMO_PERMISSIONS = ["view_product", "change_product", "view_category", "change_category"]


class Command(BaseCommand):
    help = "In the demo (SHOP_DEMO=1), make the `demo` admin account and print its login; elsewhere refuse."

    def add_arguments(self, parser):
        parser.add_argument("--site", default="http://127.0.0.1:8000", help="the store's address, for the login")

    def handle(self, *args, site, **options):
        if not settings.SHOP_DEMO:
            shut = shut_demo_account()
            raise CommandError(
                "Refused: SHOP_DEMO is off, and the demo account's password is public. "
                + ("The existing `demo` account has been deactivated." if shut else "No account made.")
            )
        ensure_demo_account()
        self.stdout.write(login_text(site.rstrip("/")))


@transaction.atomic
def ensure_demo_account():
    """Create or reset the demo account: active staff, the public password, the catalog's permissions."""
    user, _ = get_user_model().objects.get_or_create(username=DEMO_USERNAME)
    user.set_password(DEMO_PASSWORD)
    user.is_active, user.is_staff, user.is_superuser = True, True, False
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="shop", codename__in=DEMO_PERMISSIONS))
    return user


def shut_demo_account():
    """Deactivate a `demo` account that opens with the public password; tell whether there was one."""
    user = get_user_model().objects.filter(username=DEMO_USERNAME).first()
    if user is None or not user.check_password(DEMO_PASSWORD):
        return False  # none, or someone's own account of that name: not ours to touch
    user.set_unusable_password()
    user.is_active = False
    user.save()
    return True


def login_text(site):
    """Return the lines that tell a visitor how to log in and what to try."""
    return (
        f"Demo admin: {site}/admin/  user: {DEMO_USERNAME}  password: {DEMO_PASSWORD}\n"
        "  Change a product's price there, then reload its page: the change drops the cached copies at once."
    )
