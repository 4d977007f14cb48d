"""Template tags of the Ajax cart kit: what the shared snippets need from settings, nothing per visitor."""

from django import template

from pagecache.conf import setting

register = template.Library()


@register.simple_tag
def hint_cookie_name():
    """Return the hint cookie's name (PAGECACHE_HINT_COOKIE), so the script and the server agree."""
    return setting("PAGECACHE_HINT_COOKIE")
