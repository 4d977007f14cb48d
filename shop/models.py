"""The catalog (categories and products) and the database-backed cart."""

from decimal import Decimal

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.urls import reverse

# Varnish lower-cases catalog paths (one cached object per page, deploy/varnish/shop.vcl), so a
# slug with a capital letter could never be reached.
# Products on one page of a category listing (and of search results).
PRODUCTS_PER_PAGE = 24

lower_case_slug = RegexValidator(r"^[-a-z0-9_]+\Z", "Use lower-case letters, digits, hyphens or underscores.")


class Category(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100, unique=True, validators=[lower_case_slug])
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "categories"

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("category_detail", args=[self.slug])

    def page_urls(self):
        """Every page of the listing, with and without `?page=`, and one spare for a product just gone."""
        url = self.get_absolute_url()
        count = Product.objects.active().filter(category_id=self.pk).count() if self.pk else 0  # None once deleted
        pages = count // PRODUCTS_PER_PAGE + 2
        return [url] + [f"{url}?page={n}" for n in range(1, pages + 1)]


class ProductQuerySet(models.QuerySet):
    def active(self):
        return self.filter(is_active=True)


class Product(models.Model):
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products")
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True, validators=[lower_case_slug])
    description = models.TextField(blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2, validators=[MinValueValidator(Decimal("0.00"))])
    stock = models.PositiveIntegerField(default=0)
    image = models.ImageField(upload_to="products/", blank=True)
    is_active = models.BooleanField("active", default=True)
    is_featured = models.BooleanField("featured", default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProductQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        # Booleans last: Django writes `is_active=True` as a bare `WHERE "is_active"` on SQLite
        # (MySQL gets `= true`), which no index can seek on. With the flags after the sort key,
        # both databases walk the index in name order, read the flags from it and stop after one
        # page: the time of a page does not grow with the catalog (`make bench`, "costs").
        indexes = [
            # Category listing, and its count: active products of one category, by name.
            models.Index(fields=["category", "name", "is_active"], name="product_listing_idx"),
            # Home page: featured active products by name (a few percent of the catalog).
            models.Index(fields=["name", "is_featured", "is_active"], name="product_featured_idx"),
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("product_detail", args=[self.slug])

    @property
    def in_stock(self):
        return self.stock > 0


class Cart(models.Model):
    """One visitor's cart, found by the key of their session (sessions live in the database)."""

    session_key = models.CharField(max_length=40, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    def __str__(self):
        return f"Cart {self.pk}"


class CartItem(models.Model):
    cart = models.ForeignKey(Cart, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+")
    quantity = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["cart", "product"], name="one_line_per_product"),
            models.CheckConstraint(condition=models.Q(quantity__gte=1), name="quantity_at_least_one"),
        ]

    def __str__(self):
        return f"{self.quantity} x {self.product}"

    @property
    def subtotal(self):
        # Read the price now, not when the item was added: a price change shows in the cart.
        return self.product.price * self.quantity



class IdempotentRequest(models.Model):
    """The first answer to a cart write sent with an Idempotency-Key, replayed to its retries.

    Keyed by the visitor's session and the client's key, so one visitor's key never answers
    another's request. `fingerprint` is a hash of the method, path and body: the same key with
    another request is refused rather than answered with the wrong outcome.
    """

    session_key = models.CharField(max_length=40)
    key = models.CharField(max_length=100)
    fingerprint = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField()
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["session_key", "key"], name="one_outcome_per_key")]

    def __str__(self):
        return f"{self.key} ({self.status})"
