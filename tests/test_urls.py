"""Routes are anchored: private URLs with static-looking suffixes or delimiters do not resolve.

Web cache deception works when `/cart/x.css` still reaches the cart view while a cache in front
stores it as a static file. Here every such URL is a 404 from Django, whatever Varnish does.
"""

import pytest
from django.urls import Resolver404, resolve

PRIVATE_PATHS = ["/cart/", "/api/cart/", "/api/cart/items/", "/api/cart/items/blue-mug/"]
SUFFIXES = ["x.css", "x.js", "x.png", "style.css", ";x.css", "%2fx.css", "..%2fx.css", "%3bx.css", "x.json"]


@pytest.mark.parametrize("path", PRIVATE_PATHS)
@pytest.mark.parametrize("suffix", SUFFIXES)
def test_private_route_with_a_suffix_does_not_resolve(path, suffix):
    with pytest.raises(Resolver404):
        resolve(path + suffix)


@pytest.mark.parametrize("path", ["/cart;x.css", "/cart.css", "/api/cart.json", "/api/cart/items.json"])
def test_private_route_with_a_delimiter_does_not_resolve(path):
    with pytest.raises(Resolver404):
        resolve(path)


@pytest.mark.parametrize("path", PRIVATE_PATHS)
def test_private_routes_resolve_only_as_written(path):
    assert resolve(path).func.cache_class == "private"
