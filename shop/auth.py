"""Who may log in: everyone Django's model backend lets in, but not with the demo's login outside the demo.

The demo account's password is public (`ensure_demo_admin` prints it). A database that once ran
the demo and then serves production must not let it in, whether or not anyone remembered to run
`ensure_demo_admin` there to shut it.
"""

from django.conf import settings
from django.contrib.auth.backends import ModelBackend

from shop.management.commands.ensure_demo_admin import DEMO_PASSWORD, DEMO_USERNAME


class StoreBackend(ModelBackend):
    """Django's ModelBackend, refusing the demo's public login unless SHOP_DEMO is on.

    Only the public password is refused: an account of the site's own that happens to be called
    "demo" keeps its own password.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username == DEMO_USERNAME and password == DEMO_PASSWORD and not settings.SHOP_DEMO:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
