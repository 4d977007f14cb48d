"""The store's markup and URLs the checks rely on, in one place.

The cart kit's DOM contract (pagecache/static/pagecache/cart.js, docs/use-in-your-project.md)
and the store's URL scheme (docs/design.md). A change to either is a change here.
"""

# The cart badge: cart.js writes the visitor's count into its text.
BADGE = "[data-cart-count]"
BADGE_ATTR = "data-cart-count"
# On the badge: where the cart API (GET: the cart as JSON) and the add API (POST) are.
CART_API_ATTR = "data-cart-url"
ADD_API_ATTR = "data-cart-items-url"

# The add form of a product page: a GET of the private cart page without JavaScript.
ADD_FORM_CLASS = "add-to-cart"
ADD_FORM = f"form.{ADD_FORM_CLASS}"
ADD_FORM_PRODUCT_ATTR = "data-add-to-cart"  # the product's id as the add API takes it
ADD_FIELD = "add"  # the hidden field that names the product in the no-JavaScript GET
QUANTITY_FIELD = "quantity"
QUANTITY = f"{ADD_FORM} input[name={QUANTITY_FIELD}]"
SUBMIT = f"{ADD_FORM} button[type=submit], {ADD_FORM} input[type=submit]"

# A product page's price, for the admin check.
PRICE_ATTR = "data-price"

# Django's CSRF token: the cookie cart.js reads, the hidden field of private forms.
CSRF_COOKIE = "csrftoken"
CSRF_HEADER = "X-CSRFToken"
CSRF_FIELD = "csrfmiddlewaretoken"

# The store's URL scheme, relative to the base URL.
CATEGORY_PREFIX = "categories/"
PRODUCT_PREFIX = "products/"
SEARCH_FIELD = "q"
PAGE_PARAM = "page"
# Used only when a page does not say where they are (the badge, the add form).
CART_PAGE_FALLBACK = "cart/"
CART_API_FALLBACK = "api/cart/"
ADD_API_FALLBACK = "api/cart/items/"
# A URL no deployment serves, for the 404 check.
MISSING_PAGE = "e2e-no-such-page/"

# Django's admin, for the optional admin check.
ADMIN_LOGIN = "admin/login/"
ADMIN_PRODUCTS = "admin/shop/product/"
ADMIN_PRICE_FIELD = "price"
ADMIN_SLUG_LOOKUP = "slug__exact"
