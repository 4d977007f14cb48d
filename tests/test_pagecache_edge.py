"""pagecache/edge.py: bans reach every edge, and nothing about an edge ever fails the caller."""

import logging
import re

import pytest
from django.test import Client

from pagecache import edge
from tests.factories import ProductFactory


def test_ban_reaches_every_edge(settings, fake_varnish):
    url, received = fake_varnish
    settings.VARNISH_URL = [url, url + "/"]
    edge.ban(r"^/products/x/(\?|$)")
    assert received == [r"^/products/x/(\?|$)"] * 2


def test_comma_separated_string_is_a_list_of_edges(settings, fake_varnish):
    url, received = fake_varnish
    settings.VARNISH_URL = f"{url}, {url}"
    edge.ban("^/a/")
    assert len(received) == 2


def test_no_setting_means_no_bans_and_no_error(settings):
    del settings.VARNISH_URL
    edge.ban("^/a/")  # nothing to do, nothing raised


@pytest.mark.parametrize(
    "name, value, logged",
    [
        ("VARNISH_URL", ["127.0.0.1:6081"], "failed"),  # no scheme
        ("VARNISH_URL", ["http://127.0.0.1:9"], "failed"),  # nothing listens on the discard port
        ("VARNISH_URL", 6081, "not sent"),  # not a list or a string
        ("VARNISH_PURGE_TIMEOUT", "soon", "not sent"),
    ],
)
def test_broken_setting_is_logged_never_raised(settings, caplog, name, value, logged):
    settings.VARNISH_URL = ["http://127.0.0.1:9"]
    setattr(settings, name, value)
    with caplog.at_level(logging.WARNING, logger="pagecache"):
        edge.ban("^/a/")
    assert "Varnish ban '^/a/'" in caplog.text
    assert logged in caplog.text


def test_empty_regex_is_never_sent(settings, fake_varnish):
    url, received = fake_varnish
    settings.VARNISH_URL = [url]
    edge.ban("")
    assert received == []


@pytest.mark.parametrize("name", ["VARNISH_URL", "VARNISH_PURGE_TIMEOUT"])
@pytest.mark.django_db(transaction=True)
def test_admin_save_succeeds_without_any_varnish_setting(admin_user, settings, name):
    delattr(settings, name)
    product = ProductFactory(slug="blue-mug")
    staff = Client()
    staff.force_login(admin_user)
    form = {
        "category": product.category_id, "name": product.name, "slug": product.slug, "description": "",
        "price": "5.00", "stock": product.stock, "is_active": "on", "_save": "Save",
    }
    assert staff.post(f"/admin/shop/product/{product.pk}/change/", form).status_code == 302
    assert "€5.00" in Client().get("/products/blue-mug/").content.decode()


@pytest.mark.parametrize(
    "url, matched",
    [
        ("/", True), ("/?ref=abc", True), ("/?", True), ("/about/", False),
        ("/products/boot/", True), ("/products/boot/?page=2", True), ("/products/boot-deluxe/", False),
        ("/search/?q=x", True), ("/searching/", False),
    ],
)
def test_ban_regex_matches_every_query_spelling_of_a_path_and_nothing_longer(url, matched):
    regex = edge.ban_regex(paths=["/", "/products/boot/"], prefixes=["/search/"])
    assert bool(re.search(regex, url)) is matched
