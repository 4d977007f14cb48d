"""Purge latency: from a product save to its new price served by Varnish.

    python -m bench.purge --url http://127.0.0.1:6081 --slug SLUG --saves 20

Run with the stack's environment (bench/run.py passes Stack.environ()), so the save goes through
the store's own signal -> drop the Django entries -> BAN in Varnish (VARNISH_URL). Before each save
the page is a Varnish HIT; the clock starts before `save()` and stops when a GET through Varnish
shows the new price.
"""

import argparse
import json
import os
import time
import urllib.request
from decimal import Decimal

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ.setdefault("SHOP_DEMO", "1")

import django  # noqa: E402

django.setup()

from shop.models import Product  # noqa: E402

_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))
POLL_SECONDS = 0.002
GIVE_UP_SECONDS = 10


def _get(url):
    with _HTTP.open(url, timeout=5) as response:
        return response.headers.get("X-Cache", "-"), response.read().decode()


def _until_hit(url):
    for _ in range(5):
        x_cache, _body = _get(url)
        if x_cache == "HIT":
            return True
        time.sleep(0.05)
    return False


def measure(base_url, slug, saves):
    url = f"{base_url.rstrip('/')}/products/{slug}/"
    product = Product.objects.get(slug=slug)
    original = product.price
    samples = []
    try:
        for number in range(saves):
            was_hit = _until_hit(url)
            new_price = Decimal(f"{900 + number}.17")
            began = time.perf_counter()
            product.price = new_price
            product.save()
            saved = time.perf_counter() - began
            polls = 0
            while True:
                polls += 1
                x_cache, body = _get(url)
                if f"€{new_price}<" in body:
                    break
                if time.perf_counter() - began > GIVE_UP_SECONDS:
                    raise RuntimeError(f"the new price of {slug} was not served within {GIVE_UP_SECONDS} s")
                time.sleep(POLL_SECONDS)
            samples.append({
                "seconds": round(time.perf_counter() - began, 4),
                "save_seconds": round(saved, 4),
                "polls": polls,
                "was_hit_before": was_hit,
                "x_cache_after": x_cache,
            })
    finally:
        product.price = original
        product.save()
    return {"url": url, "samples": samples}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="Varnish, e.g. http://127.0.0.1:6081")
    parser.add_argument("--slug", required=True)
    parser.add_argument("--saves", type=int, default=20)
    args = parser.parse_args()
    print("BENCH_JSON " + json.dumps(measure(args.url, args.slug, args.saves)))


if __name__ == "__main__":
    main()
