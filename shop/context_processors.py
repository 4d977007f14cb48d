"""The store's own template context: settings only, the same for every visitor.

These run for every template, shared (cached) pages included: they must never read the session,
the user or a cookie, or one visitor's data would end up in the copy everyone gets.
"""

from django.conf import settings


def serving_panel(request):
    """Say whether pages carry the demo's serving panel (SHOP_SERVING_PANEL)."""
    return {"serving_panel": getattr(settings, "SHOP_SERVING_PANEL", False)}
