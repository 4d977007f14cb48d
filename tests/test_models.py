from decimal import Decimal

import pytest
from django.db import IntegrityError, connection

from shop.models import CartItem, Product
from tests.factories import CartFactory, CartItemFactory, CategoryFactory, ProductFactory

pytestmark = pytest.mark.django_db


def test_product_url_uses_its_slug():
    assert ProductFactory(slug="oak-bowl").get_absolute_url() == "/products/oak-bowl/"


def test_category_url_uses_its_slug():
    assert CategoryFactory(slug="kitchen").get_absolute_url() == "/categories/kitchen/"


def test_active_queryset_hides_inactive_products():
    shown = ProductFactory()
    ProductFactory(is_active=False)
    assert list(Product.objects.active()) == [shown]


def test_cart_line_is_unique_per_product():
    item = CartItemFactory()
    with pytest.raises(IntegrityError):
        CartItem.objects.create(cart=item.cart, product=item.product, quantity=1)


def test_cart_line_quantity_cannot_be_zero():
    cart = CartFactory()
    with pytest.raises(IntegrityError):
        CartItem.objects.create(cart=cart, product=ProductFactory(), quantity=0)


def test_subtotal_reads_the_current_price():
    item = CartItemFactory(quantity=3, product__price=Decimal("2.00"))
    Product.objects.filter(pk=item.product.pk).update(price=Decimal("5.00"))
    item.refresh_from_db()
    assert item.subtotal == Decimal("15.00")


def test_out_of_stock_product_is_not_in_stock():
    assert not ProductFactory(stock=0).in_stock


@pytest.mark.parametrize("slug", ["Blue-Mug", "BLUE"])
def test_slugs_with_capital_letters_are_refused(slug):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="lower-case"):
        ProductFactory.build(slug=slug, category=CategoryFactory()).full_clean()


# transaction=True: ANALYZE TABLE commits on MySQL, so the test cannot run inside a rolled-back transaction.
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "listing, index",
    [
        (lambda category: category.products.active().order_by("name")[:24], "product_listing_idx"),
        (lambda category: Product.objects.active().filter(is_featured=True)[:8], "product_featured_idx"),
    ],
    ids=["category-page", "home-featured"],
)
def test_listing_walks_its_index_in_name_order_and_sorts_nothing(listing, index):
    """A page of a listing reads one page of an index, whatever the size of the catalog."""
    category = CategoryFactory()
    # Enough rows that MariaDB's optimiser prefers an index to scanning and sorting the table.
    Product.objects.bulk_create(
        Product(
            category=category,
            name=f"Product {n:05}",
            slug=f"product-{n}",
            price=Decimal("1.00"),
            is_featured=n % 30 == 0,
        )
        for n in range(3000)
    )
    if connection.vendor == "mysql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE TABLE shop_product")  # the statistics a live table has
    plan = listing(category).explain()
    assert index in plan
    assert "TEMP B-TREE" not in plan.upper()  # SQLite's sort
    assert "filesort" not in plan.lower()  # MySQL's and MariaDB's
