"""pagecache/guard.py: a shared page that touches visitor state is refused, loudly in development."""

import pytest
from django.middleware.csrf import get_token
from django.test import Client

import shop.views
from pagecache.guard import VisitorStateError
from tests.factories import ProductFactory

TOUCHES = {
    "session": lambda request, response: request.session.get("anything"),
    "csrf": lambda request, response: get_token(request),
    "csp-nonce": lambda request, response: str(request.csp_nonce),
    "cookie": lambda request, response: response.set_cookie("tracking", "1"),
}


@pytest.fixture
def touching_view(monkeypatch):
    """Make the product page touch one kind of visitor state while it renders."""

    def use(kind):
        real_render = shop.views.render

        def render_touching(request, *args, **kwargs):
            response = real_render(request, *args, **kwargs)
            TOUCHES[kind](request, response)
            return response

        monkeypatch.setattr(shop.views, "render", render_touching)

    return use


@pytest.mark.parametrize("kind", TOUCHES)
def test_with_debug_the_guard_raises_naming_what_and_where(db, settings, touching_view, kind):
    settings.DEBUG = True
    ProductFactory(slug="blue-mug")
    touching_view(kind)
    with pytest.raises(VisitorStateError) as raised:
        Client().get("/products/blue-mug/")
    message = str(raised.value)
    assert raised.value.reasons == [kind]
    assert "/products/blue-mug/ touched visitor state" in message
    assert "shop.views.product_detail" in message  # the view
    assert "'product_detail'" in message  # its URL name


def test_with_debug_the_message_names_the_cookies(db, settings, touching_view):
    settings.DEBUG = True
    ProductFactory(slug="blue-mug")
    touching_view("cookie")
    with pytest.raises(VisitorStateError, match="Cookies set: tracking"):
        Client().get("/products/blue-mug/")


@pytest.mark.parametrize("kind", TOUCHES)
def test_in_production_the_page_is_answered_private_and_never_stored(db, settings, touching_view, caplog, kind):
    settings.DEBUG = False
    ProductFactory(slug="blue-mug")
    touching_view(kind)
    first, second = Client().get("/products/blue-mug/"), Client().get("/products/blue-mug/")
    assert first.status_code == 200
    assert "private" in first["Cache-Control"]
    assert "X-Django-Cache" not in second
    assert [record.pagecache_reasons for record in caplog.records if record.name == "pagecache.guard"] == [[kind]] * 2
