"""Three app nodes behind Varnish share one cache and one database (issue 7: shared cache).

Each node is its own Nginx and uWSGI (deploy/stack.py with nodes=3, cluster.vcl in front); all
of them keep Django's cache in one Redis and their sessions in one database. So a page that one
node cached is a hit on the others, a catalog change made through any node drops the page on
all of them and BANs it in every Varnish of VARNISH_URL, and a cart does not care which node
answers. Nodes are asked directly (their own Nginx) where the test is about Django's cache, and
through Varnish where it is about what a visitor gets.
"""

import re
from decimal import Decimal

import pytest

from tests.stack.cluster import SecondVarnish, nginx_requests, start_cluster, stop_cluster
from tests.stack.fixtures import ADMIN_PASSWORD, ADMIN_USERNAME, Catalog, form_fields, http_session

pytestmark = pytest.mark.stack

VARNISH_PORT, SECOND_VARNISH_PORT, NGINX_PORT, REDIS_PORT = 16093, 16094, 18093, 26379


@pytest.fixture(scope="module")
def cluster(request):
    """Three nodes, one Redis of the test's own, and two Varnish servers in VARNISH_URL."""
    varnish_urls = f"http://127.0.0.1:{VARNISH_PORT},http://127.0.0.1:{SECOND_VARNISH_PORT}"
    cluster = start_cluster("scale-out", VARNISH_PORT, NGINX_PORT, REDIS_PORT, env={"VARNISH_URL": varnish_urls})
    request.addfinalizer(lambda: stop_cluster(cluster, "scale-out", request.session.testsfailed))
    cluster.second_varnish = SecondVarnish(cluster.stack, SECOND_VARNISH_PORT)
    cluster.second_varnish.start()
    return cluster


@pytest.fixture(scope="module")
def products(cluster):
    return Catalog(cluster.stack)


def _price_on(response):
    match = re.search(r"<p class=\"price big\" data-price>€([0-9.]+)</p>", response.text)
    assert match, f"no price on {response.url}"
    return match.group(1)


# ------------------------------------------------------------------------------------------------
# The shared Django cache
# ------------------------------------------------------------------------------------------------


def test_page_cached_by_one_node_is_a_hit_on_every_other_node(cluster, products):
    [product] = products.fresh()
    http = http_session()
    node1, *others = cluster.stack.app_nodes

    first = http.get(node1.url + product.path)
    elsewhere = [http.get(node.url + product.path) for node in others]

    assert first.status_code == 200
    assert first.headers["X-Django-Cache"] == "MISS"
    assert [(r.status_code, r.headers["X-Django-Cache"]) for r in elsewhere] == [(200, "HIT")] * len(others)
    assert {r.headers["ETag"] for r in elsewhere} == {first.headers["ETag"]}
    assert all(r.content == first.content for r in elsewhere)


def _change_price_in_admin(base_url, product, price):
    """Log in to the admin of the node at `base_url` and save `product` with a new price there."""
    admin = http_session()
    login_url = base_url + "/admin/login/"
    login = form_fields(admin.get(login_url).text, "login-form")
    login.update(username=ADMIN_USERNAME, password=ADMIN_PASSWORD, next="/admin/")
    assert admin.post(login_url, data=login, allow_redirects=False).status_code == 302, "admin login failed"
    form_url = f"{base_url}/admin/shop/product/{product.pk}/change/"
    form = form_fields(admin.get(form_url).text, "product_form")
    assert form["price"] == product.price
    form.update(price=price, _save="Save")
    # multipart/form-data, as a browser sends the admin's form (it has a file field).
    saved = admin.post(form_url, files=[(k, (None, v)) for k, v in form.items()], allow_redirects=False)
    assert saved.status_code == 302, re.findall(r'class="errorlist[^"]*".*?</ul>', saved.text, re.DOTALL)


def test_admin_edit_through_one_node_drops_the_page_on_every_node(cluster, products):
    [product] = products.fresh()
    nodes = cluster.stack.app_nodes
    http = http_session()
    http.get(nodes[0].url + product.path)
    assert [http.get(node.url + product.path).headers["X-Django-Cache"] for node in nodes] == ["HIT"] * 3
    new_price = str(Decimal(product.price) + Decimal("2.22"))

    _change_price_in_admin(cluster.stack.node(2).url, product, new_price)

    # The signal ran in node 2's worker; the entry it deleted was every node's.
    after = [http.get(node.url + product.path) for node in (nodes[0], nodes[2])]
    assert after[0].headers["X-Django-Cache"] == "MISS"  # rendered anew, once ...
    assert after[1].headers["X-Django-Cache"] == "HIT"  # ... and shared again
    assert [_price_on(response) for response in after] == [new_price, new_price]


# ------------------------------------------------------------------------------------------------
# Purges
# ------------------------------------------------------------------------------------------------

_CHANGE_PRICE = (
    "from shop.models import Product\n"
    "product = Product.objects.get(pk={pk})\n"
    "product.price = '{price}'\n"
    "product.save()\n"
)


def test_catalog_change_purges_every_varnish_listed(cluster, products):
    [product] = products.fresh()
    varnishes = [cluster.stack.varnish_url, cluster.second_varnish.url]
    http = http_session()
    for varnish in varnishes:
        http.get(varnish + product.path)
        assert http.get(varnish + product.path).headers["X-Cache"] == "HIT", varnish
    new_price = str(Decimal(product.price) + Decimal("3.33"))

    # A save in code, with the nodes' settings: VARNISH_URL lists both Varnish servers.
    cluster.stack.manage("shell", "-c", _CHANGE_PRICE.format(pk=product.pk, price=new_price))

    for varnish in varnishes:
        page = http.get(varnish + product.path)
        assert (page.headers["X-Cache"], _price_on(page)) == ("MISS", new_price), varnish


# ------------------------------------------------------------------------------------------------
# Sessions and carts, and the director
# ------------------------------------------------------------------------------------------------


def test_cart_made_through_one_node_is_the_same_on_every_node_and_outlives_the_cache(cluster, products):
    [product] = products.fresh()
    nodes = cluster.stack.app_nodes
    shopper = http_session()
    shopper.get(nodes[0].url + "/api/cart/")  # the csrftoken cookie, as cart.js gets it
    added = shopper.post(
        nodes[0].url + "/api/cart/items/",
        json={"product": product.slug, "quantity": 2},
        headers={"X-CSRFToken": shopper.cookies["csrftoken"]},
    )
    assert added.status_code == 200, added.text

    # Sessions and carts live in the database: emptying the shared cache loses nothing.
    assert cluster.redis.command("FLUSHALL") == "+OK"
    # The cookies as a browser sends them to the one address it knows (a cookie jar would
    # keep 127.0.0.2's cookies from 127.0.0.3).
    cookies = {"Cookie": "; ".join(f"{name}={value}" for name, value in shopper.cookies.items())}
    carts = [http_session().get(node.url + "/api/cart/", headers=cookies).json() for node in nodes]

    assert [(c["count"], [i["product"] for i in c["items"]]) for c in carts] == [(2, [product.slug])] * 3


def test_director_hands_private_requests_to_every_node_in_turn(cluster):
    stack = cluster.stack
    http = http_session()
    before = nginx_requests(stack, "/api/cart/")

    statuses = [http.get(stack.url("/api/cart/")).status_code for _ in range(12)]

    after = nginx_requests(stack, "/api/cart/")
    assert statuses == [200] * 12
    # Round robin: each node takes every third request.
    assert {name: after[name] - before[name] for name in after} == {"node1": 4, "node2": 4, "node3": 4}
