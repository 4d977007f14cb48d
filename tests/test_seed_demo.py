from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from shop.models import Category, Product

pytestmark = pytest.mark.django_db


def _seed(**options):
    call_command("seed_demo", verbosity=0, stdout=StringIO(), **options)
    return list(Product.objects.order_by("slug").values_list("slug", "name", "price", "stock", "category__slug"))


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def test_seed_makes_categories_and_products_with_images(settings):
    _seed(products=40)
    assert Category.objects.count() == 8
    assert Product.objects.count() == 40
    product = Product.objects.first()
    assert product.price > 0
    assert product.description
    assert (Path(settings.MEDIA_ROOT) / product.image.name).is_file()
    assert Product.objects.filter(is_featured=True).exists()


def test_seed_is_idempotent():
    first = _seed(products=30)
    assert _seed(products=30) == first


def test_same_seed_same_catalog_whatever_the_size():
    small = _seed(products=20)
    Product.objects.all().delete()
    larger = _seed(products=25)
    assert set(small) <= set(larger)


def test_other_seed_other_catalog():
    first = _seed(products=10, seed=1)
    Product.objects.all().delete()
    assert _seed(products=10, seed=2) != first


def test_negative_count_is_refused():
    with pytest.raises(CommandError):
        _seed(products=-1)


def test_if_empty_seeds_an_empty_catalog():
    assert len(_seed(products=12, if_empty=True)) == 12


def test_if_empty_leaves_a_catalog_alone():
    first = _seed(products=5)
    assert _seed(products=30, if_empty=True) == first
