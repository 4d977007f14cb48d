"""Many visitors, each with their own cookies: the hit rate a cache keeps, and what it leaks.

    python -m bench.visitors create --count 200    sessions with carts in the database of
                                                    DATABASE_URL; prints their keys and counts

bench/run.py runs `create` in a subprocess with a stack's environment, then browses with
`browse()` (standard library only, no Django in the driver): every visitor sends their own
`sessionid`, `csrftoken`, `_ga` and `cart_hint` cookies, keeps the cookies the answers set, as a
browser does, and every answer is checked for another visitor's data:

    cart_count   a cart count in the HTML that is not the visitor's own
    set_cookie   a Set-Cookie that replaces a cookie the visitor holds with another value
    csrf_token   a CSRF token in the HTML made from another visitor's `csrftoken` secret
"""

import argparse
import concurrent.futures
import gzip
import http.client
import json
import os
import random
import re
import string
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.cookies import SimpleCookie

# Django's CSRF alphabet and secret length (django.middleware.csrf): a form token is a 32-character
# mask followed by the secret enciphered with it.
CSRF_CHARS = string.ascii_letters + string.digits
CSRF_SECRET_LENGTH = 32

_CART_COUNT = re.compile(r"data-cart-count[^>]*>\s*(\d+)\s*<")
_CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([A-Za-z0-9]{64})"')
LEAK_KINDS = ("cart_count", "set_cookie", "csrf_token")


@dataclass
class Visitor:
    """One visitor: their cookies, and the cart count that is theirs."""

    number: int
    count: int
    cookies: dict = field(default_factory=dict)

    def cookie_header(self):
        return "; ".join(f"{name}={value}" for name, value in self.cookies.items())


def make_visitors(sessions, seed=1, hint_seconds=86_400):
    """Return Visitors from `create`'s sessions, with a CSRF secret, analytics cookies and a fresh hint."""
    rng = random.Random(seed)
    refresh_after = int(time.time()) + hint_seconds  # a hint the script trusts: no check while browsing
    visitors = []
    for number, session in enumerate(sessions):
        cookies = {
            "sessionid": session["key"],
            "csrftoken": "".join(rng.choice(CSRF_CHARS) for _ in range(CSRF_SECRET_LENGTH)),
            "_ga": f"GA1.1.{rng.randrange(10**9, 10**10)}.{int(time.time()) - rng.randrange(10**6)}",
            "_gid": f"GA1.1.{rng.randrange(10**9, 10**10)}",
            "cart_hint": f"{session['count']}.{refresh_after}",
        }
        visitors.append(Visitor(number, session["count"], cookies))
    return visitors


def unmask_csrf(token):
    """Return the secret a 64-character form token was made from (Django's own arithmetic)."""
    mask, cipher = token[:CSRF_SECRET_LENGTH], token[CSRF_SECRET_LENGTH:]
    return "".join(CSRF_CHARS[CSRF_CHARS.index(c) - CSRF_CHARS.index(m)] for c, m in zip(cipher, mask, strict=True))


def leaks_in(visitor, body, set_cookies):
    """Return the kinds of another visitor's data that one answer carries (a list, maybe empty)."""
    found = []
    shown = _CART_COUNT.search(body)
    if shown and int(shown.group(1)) != visitor.count:
        found.append("cart_count")
    for name, value in set_cookies.items():
        mine = visitor.cookies.get(name)
        if name == "cart_hint":
            # The hint's refresh time moves; its count must stay the visitor's own.
            mine, value = (mine or "").split(".")[0], value.split(".")[0]
        if mine is not None and value and value != mine:
            found.append("set_cookie")
            break
    token = _CSRF_FIELD.search(body)
    if token and unmask_csrf(token.group(1)) != visitor.cookies.get("csrftoken"):
        found.append("csrf_token")
    return found


def _set_cookies(response):
    """Return {name: value} of the answer's Set-Cookie headers."""
    jar = SimpleCookie()
    for header in response.headers.get_all("Set-Cookie") or []:
        jar.load(header)
    return {name: morsel.value for name, morsel in jar.items()}


class _Tally:
    """Counts shared by the browsing threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.views = 0
        self.statuses = {}
        self.x_cache = {}
        self.leaks = dict.fromkeys(LEAK_KINDS, 0)
        self.leaky_views = 0
        self.vary_cookie = 0

    def add(self, status, x_cache, leaks, vary_cookie=False):
        with self.lock:
            self.views += 1
            self.vary_cookie += vary_cookie
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self.x_cache[x_cache] = self.x_cache.get(x_cache, 0) + 1
            for kind in leaks:
                self.leaks[kind] += 1
            self.leaky_views += bool(leaks)


def _view(conn, host, visitor, path, tally):
    """GET one page as `visitor`; tally it; keep the cookies it sets unless they are another's."""
    conn.request("GET", path, headers={
        "Host": host, "Cookie": visitor.cookie_header(), "Accept": "text/html",
        "Accept-Encoding": "gzip", "User-Agent": "bench-visitor",
    })
    response = conn.getresponse()
    raw = response.read()
    body = gzip.decompress(raw) if response.getheader("Content-Encoding") == "gzip" else raw
    set_cookies = _set_cookies(response)
    leaks = leaks_in(visitor, body.decode("utf-8", "replace"), set_cookies)
    if "set_cookie" not in leaks:
        visitor.cookies.update({k: v for k, v in set_cookies.items() if v})
    # An answer that varies on Cookie is one copy per visitor in any cache that honours Vary.
    vary_cookie = "cookie" in (response.getheader("Vary") or "").lower()
    tally.add(response.status, response.getheader("X-Cache", "-"), leaks, vary_cookie)


def _browse_group(base_url, group, tally, deadline):
    """Browse the pages of a group of visitors, one page of each in turn, on one keep-alive connection."""
    parts = urllib.parse.urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        for step in range(max(len(paths) for _, paths in group)):
            for visitor, paths in group:
                if step < len(paths) and time.monotonic() < deadline:
                    try:
                        _view(conn, parts.netloc, visitor, paths[step], tally)
                    except (OSError, http.client.HTTPException):
                        conn.close()  # reconnects on the next request
                        tally.add("error", "-", [])
    finally:
        conn.close()


def browse(base_url, visitors, pages, threads=8, seed=2, cap_seconds=300):
    """Have every visitor view every page of `pages` once, in an order of their own; return the tally."""
    rng = random.Random(seed)
    plan = [(visitor, rng.sample(pages, len(pages))) for visitor in visitors]
    groups = [plan[i::threads] for i in range(threads)]
    tally = _Tally()
    began = time.monotonic()
    deadline = began + cap_seconds
    with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(lambda group: _browse_group(base_url, group, tally, deadline), [g for g in groups if g]))
    return {
        "views": tally.views,
        "planned": len(visitors) * len(pages),
        "seconds": round(time.monotonic() - began, 2),
        "statuses": {str(k): v for k, v in tally.statuses.items()},
        "x_cache": tally.x_cache,
        "leaks": tally.leaks,
        "leaky_views": tally.leaky_views,
        "vary_cookie": tally.vary_cookie,
    }


# ------------------------------------------------------------------------------------------------
# `create`: run by bench/run.py in a process with the stack's settings
# ------------------------------------------------------------------------------------------------


def create(count):
    """Make `count` sessions, each with a cart of its own size (1, 2, ... items); return keys and counts."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import transaction

    from shop.models import Cart, CartItem, Product

    max_quantity = 99  # the smallest CART_MAX_QUANTITY a deployment would set
    products = list(Product.objects.active().filter(stock__gt=0).order_by("id")[:50])
    sessions = []
    with transaction.atomic():
        for number in range(count):
            session = SessionStore()
            session["has_cart"] = True  # as shop.cart.get_cart(create=True) leaves it
            session.create()
            cart = Cart.objects.create(session_key=session.session_key)
            # A count of its own for every visitor, so any count shown to another is a leak.
            wanted, line = number + 1, 0
            while wanted:
                quantity = min(wanted, max_quantity)
                CartItem.objects.create(cart=cart, product=products[line], quantity=quantity)
                wanted -= quantity
                line += 1
            sessions.append({"key": session.session_key, "count": number + 1})
    return sessions


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["create"])
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    print("BENCH_JSON " + json.dumps(create(args.count)))


if __name__ == "__main__":
    main()
