"""The Django admin is the store's CMS. Saves here drop cached pages (shop/signals.py)."""

from django.contrib import admin

from shop.models import Cart, CartItem, Category, Product


class ProductInline(admin.TabularInline):
    model = Product
    fields = ("name", "price", "stock", "is_active", "is_featured")
    show_change_link = True
    extra = 0
    max_num = 0  # edit existing products here; add new ones on the product form (it has the slug)
    can_delete = False


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "updated_at")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [ProductInline]


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("name", "category", "price", "stock", "is_active", "is_featured", "updated_at")
    list_editable = ("price", "stock", "is_active", "is_featured")
    list_filter = ("is_active", "is_featured", "category")
    list_select_related = ("category",)
    search_fields = ("name", "slug", "description")
    prepopulated_fields = {"slug": ("name",)}
    autocomplete_fields = ("category",)
    date_hierarchy = "created_at"
    list_per_page = 50


class CartItemInline(admin.TabularInline):
    model = CartItem
    raw_id_fields = ("product",)
    extra = 0


@admin.register(Cart)
class CartAdmin(admin.ModelAdmin):
    list_display = ("id", "session_key", "created_at", "updated_at")
    readonly_fields = ("session_key", "created_at", "updated_at")
    inlines = [CartItemInline]
