"""Every page of the store, as a visitor sees it, and the cart without JavaScript."""

import re

import pytest

from tests.factories import CategoryFactory, ProductFactory

pytestmark = pytest.mark.django_db


def test_home_lists_categories_and_featured_products(client):
    category = CategoryFactory(name="Kitchen")
    ProductFactory(name="Featured Teapot", is_featured=True, category=category)
    ProductFactory(name="Plain Spoon", is_featured=False, category=category)
    page = client.get("/").content.decode()
    assert "Kitchen" in page
    assert "Featured Teapot" in page
    assert "Plain Spoon" not in page


def test_category_page_lists_only_its_active_products(client):
    category = CategoryFactory(slug="garden")
    ProductFactory(name="Green Trowel", category=category)
    ProductFactory(name="Hidden Trowel", category=category, is_active=False)
    ProductFactory(name="Other Thing")
    response = client.get("/categories/garden/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Green Trowel" in page
    assert "Hidden Trowel" not in page
    assert "Other Thing" not in page


def test_category_pages_are_paginated(client):
    category = CategoryFactory(slug="many")
    ProductFactory.create_batch(30, category=category)
    first = client.get("/categories/many/").content.decode()
    second = client.get("/categories/many/?page=2").content.decode()
    assert "Page 1 of 2" in first
    assert "Page 2 of 2" in second
    assert second.count('class="card"') == 6


@pytest.mark.parametrize("page", ["3", "0", "abc", "-1"])
def test_category_page_out_of_range_is_404(client, page):
    ProductFactory(category=CategoryFactory(slug="few"))
    assert client.get(f"/categories/few/?page={page}").status_code == 404


def test_product_page_shows_name_price_and_add_form(client, product):
    response = client.get("/products/blue-mug/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Blue Mug" in page
    assert "€12.50" in page
    assert 'class="add-to-cart"' in page


def test_every_page_carries_the_cart_kit_config_and_its_deferred_script(client, product):
    for url in ("/", "/products/blue-mug/", "/search/?q=mug", "/cart/"):
        page = client.get(url).content.decode()
        assert re.search(
            r'<span class="badge" data-cart-count data-cart-url="/api/cart/" data-cart-items-url="/api/cart/items/"',
            page,
        ), url
        assert re.search(r'<script src="/static/pagecache/cart\.[0-9a-f]{12}\.js" defer></script>', page), url


def test_add_form_follows_the_kit_contract_and_works_without_javascript(client, product):
    page = client.get("/products/blue-mug/").content.decode()
    form = re.search(r'<form class="add-to-cart"[^>]*>.*?</form>', page, re.S).group(0)
    assert 'action="/cart/" method="get" data-add-to-cart="blue-mug"' in form
    assert '<input type="hidden" name="add" value="blue-mug">' in form
    assert 'name="quantity" value="1" min="1" max="99"' in form
    assert "data-add-status" in form
    assert "csrfmiddlewaretoken" not in page


def test_inactive_product_page_is_404(client):
    ProductFactory(slug="gone", is_active=False)
    assert client.get("/products/gone/").status_code == 404


def test_out_of_stock_product_has_no_add_form(client):
    ProductFactory(slug="sold-out", stock=0)
    page = client.get("/products/sold-out/").content.decode()
    assert "Out of stock" in page
    assert 'class="add-to-cart"' not in page


def test_search_finds_products_by_name_and_description(client):
    ProductFactory(name="Copper Kettle")
    ProductFactory(name="Tea Tin", description="Keeps copper-coloured leaves fresh")
    ProductFactory(name="Oak Bowl")
    page = client.get("/search/?q=copper").content.decode()
    assert "Copper Kettle" in page
    assert "Tea Tin" in page
    assert "Oak Bowl" not in page
    assert "2 results" in page


def test_search_without_query_asks_for_one(client):
    response = client.get("/search/")
    assert response.status_code == 200
    assert "Type what you are looking for" in response.content.decode()


def test_search_escapes_the_query(client):
    page = client.get("/search/?q=<script>alert(1)</script>").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page


def test_unknown_url_gets_the_store_404_page(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "couldn’t find that page" in page
    assert "CornerShop" in page.replace("<span>", "").replace("</span>", "")


def test_healthz_answers_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok\n"


def test_cart_page_is_empty_for_a_new_visitor(client):
    response = client.get("/cart/")
    assert response.status_code == 200
    assert "Your cart is empty" in response.content.decode()


# The no-JavaScript flow: product form (GET) -> confirm form on /cart/ (POST, CSRF) -> cart.


def test_add_without_javascript_confirms_then_adds(client, product):
    confirm = client.get("/cart/?add=blue-mug&quantity=2")
    assert "Add <strong>Blue Mug</strong>" in confirm.content.decode()
    assert "csrfmiddlewaretoken" in confirm.content.decode()
    done = client.post("/cart/", {"action": "add", "product": "blue-mug", "quantity": "2"}, follow=True)
    page = done.content.decode()
    assert done.redirect_chain == [("/cart/", 302)]
    assert "Added to your cart." in page
    assert 'data-cart-line="blue-mug"' in page
    assert "Total (2 items)" in page


def test_update_and_remove_without_javascript(client, product):
    client.post("/cart/", {"action": "add", "product": "blue-mug", "quantity": "1"})
    client.post("/cart/", {"action": "update", "product": "blue-mug", "quantity": "4"})
    assert "Total (4 items)" in client.get("/cart/").content.decode()
    client.post("/cart/", {"action": "remove", "product": "blue-mug"})
    assert "Your cart is empty" in client.get("/cart/").content.decode()


@pytest.mark.parametrize("quantity", ["-1", "1000", "abc", "1.5", ""])
def test_bad_quantity_without_javascript_shows_error_and_changes_nothing(client, product, quantity):
    client.post("/cart/", {"action": "add", "product": "blue-mug", "quantity": "1"})
    response = client.post("/cart/", {"action": "update", "product": "blue-mug", "quantity": quantity})
    assert response.status_code == 400
    assert "Quantity must be a whole number" in response.content.decode()
    assert "Total (1 item)" in client.get("/cart/").content.decode()


def test_update_to_zero_without_javascript_removes_the_line(client, product):
    client.post("/cart/", {"action": "add", "product": "blue-mug", "quantity": "3"})
    client.post("/cart/", {"action": "update", "product": "blue-mug", "quantity": "0"})
    assert "Your cart is empty" in client.get("/cart/").content.decode()


def test_confirm_for_unknown_product_is_404(client):
    assert client.get("/cart/?add=nothing-here").status_code == 404


def test_cart_form_post_without_csrf_token_is_refused(product):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/cart/", {"action": "add", "product": "blue-mug"})
    assert response.status_code == 403
    assert "form has expired" in response.content.decode()


def test_double_slash_path_is_not_an_open_redirect(client, db):
    response = client.get("//evil.example/products")
    assert response.status_code == 404
    assert "evil.example" not in response.get("Location", "")


@pytest.mark.parametrize(
    "path", ["/products/%0d%0aSet-Cookie:x=1/", "/products/" + "a" * 3000 + "/", "/products/%ff%fe/"]
)
def test_odd_paths_are_a_clean_404(client, db, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "Set-Cookie" not in str(response.headers.get("Location", ""))
    assert not any(name.lower() == "x" for name in response.cookies)


def test_post_to_a_shared_page_is_405(client, product):
    assert client.post("/products/blue-mug/").status_code == 405


@pytest.mark.parametrize("page", ["01", "+2", " 2", "2 ", "1_0", "٢", "2.0", "0", "-1"])
def test_a_page_number_has_one_spelling_the_others_are_404(client, db, page):
    """Every other spelling would be a cached copy of its own that no purge names."""
    kitchen = CategoryFactory(slug="kitchen")
    ProductFactory.create_batch(30, category=kitchen)
    assert client.get("/categories/kitchen/", {"page": "2"}).status_code == 200
    assert client.get("/categories/kitchen/", {"page": page}).status_code == 404
    assert client.get("/search/", {"q": "a", "page": page}).status_code == 404
