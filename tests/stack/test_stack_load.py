"""A bounded load test through Varnish, short enough for `make test`, with nothing lost.

VISITORS visitors, served by THREADS threads for DURATION seconds, mix product views, cart
counts and adds to the cart, while a separate process changes one product's price every
PRICE_EVERY seconds (a save in the ORM: its signal drops Django's copies and BANs Varnish's).
It must end with no answer other than 2xx, no socket error, every visitor's cart equal to the
ledger of its successful adds, and every price change visible through Varnish within
PURGE_WITHIN seconds of the save. The figures are printed and written to
test-artifacts/load-test.json; docs/security.md quotes a run.
"""

import json
import random
import re
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from decimal import Decimal

import pytest
import requests

from tests.stack.fixtures import ARTIFACTS, http_session
from tests.stack.throwaway import Shopper

pytestmark = pytest.mark.stack

VISITORS = 20
THREADS = 3
DURATION = 15.0  # seconds of traffic
PRICE_EVERY = 3.0  # seconds between price changes
PURGE_WITHIN = 2.0  # seconds from a save to the new price through Varnish
WATCH_STEP = 0.05  # seconds between the watcher's looks at the page

# Runs in `manage.py shell` with the stack's settings (VARNISH_URL included): after "ready",
# one change every PRICE_EVERY seconds, each reported with the time just before its save.
CHANGE_PRICES = """
import json, sys, time
from decimal import Decimal
from shop.models import Product
product = Product.objects.get(pk={pk})
print(json.dumps({{"ready": True}}), flush=True)
start = time.time()
for n in range(1, {changes} + 1):
    time.sleep(max(0, start + n * {every} - time.time()))
    product.price = Decimal("{base}") + Decimal(n) / 100
    saved_at = time.time()
    product.save()
    print(json.dumps({{"price": str(product.price), "saved_at": saved_at}}), flush=True)
"""


class Traffic:
    """The visitors' requests, their outcomes, and what a watcher saw of one product's price."""

    def __init__(self, stack, products, hot):
        self.stack, self.products, self.hot = stack, products, hot
        self.visitors = [Shopper(stack).start() for _ in range(VISITORS)]
        self.outcomes = Counter()
        self.errors = []
        self.seen = []  # (time, price) each time the watched price changed
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def run(self, seconds):
        threads = [threading.Thread(target=self._serve, args=(i,)) for i in range(THREADS)]
        threads.append(threading.Thread(target=self._watch))
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        self._stop.set()
        for thread in threads:
            thread.join(timeout=30)

    def _serve(self, number):
        chance = random.Random(number)
        mine = self.visitors[number::THREADS]
        while not self._stop.is_set():
            visitor = chance.choice(mine)
            roll = chance.random()
            try:
                if roll < 0.6:
                    response = visitor.http.get(self.stack.url(chance.choice(self.products).path), timeout=10)
                elif roll < 0.85:
                    response = visitor.http.get(self.stack.url("/api/cart/"), timeout=10)
                else:
                    response = visitor.add(chance.choice(self.products).slug, 1, timeout=10)
                    if isinstance(response, Exception):
                        raise response
                self._count(response.status_code)
            except requests.RequestException as error:
                self._count("socket error", repr(error))

    def _count(self, outcome, error=None):
        with self._lock:
            self.outcomes[outcome] += 1
            if error:
                self.errors.append(error)

    def _watch(self):
        http = http_session()
        url, last = self.stack.url(self.hot.path), None
        while not self._stop.is_set():
            try:
                page = http.get(url, timeout=10)
                self._count(page.status_code)
                price = _shown_price(page.text)
                if price != last:
                    self.seen.append((time.time(), price))
                    last = price
            except requests.RequestException as error:
                self._count("socket error", repr(error))
            time.sleep(WATCH_STEP)


def _shown_price(html):
    match = re.search(r"€([0-9.]+)</p>", html)
    return match and match.group(1)


def _start_price_changes(stack, product, changes):
    code = CHANGE_PRICES.format(pk=product.pk, changes=changes, every=PRICE_EVERY, base=product.price)
    python = stack.root / ".venv" / "bin" / "python"
    changer = subprocess.Popen(
        [str(python if python.exists() else sys.executable), "manage.py", "shell", "-v", "0", "-c", code],
        cwd=stack.root,
        env=stack.environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    first = changer.stdout.readline()
    assert first.startswith('{"ready"'), first + changer.stdout.read(2000)
    return changer


def _purge_latencies(changes, seen):
    """Seconds from each save to the first look that showed its price (None: never shown)."""
    latencies = []
    for change in changes:
        shown = [at for at, price in seen if price == change["price"] and at >= change["saved_at"]]
        latencies.append(round(shown[0] - change["saved_at"], 3) if shown else None)
    return latencies


def test_mixed_traffic_with_price_changes_loses_nothing(stack, catalog):
    products = catalog.fresh(8)
    hot = products[0]
    traffic = Traffic(stack, products, hot)
    changes_count = int(DURATION // PRICE_EVERY) - 1

    changer = _start_price_changes(stack, hot, changes_count)
    try:
        began = time.monotonic()
        traffic.run(DURATION)
        elapsed = time.monotonic() - began
        output, _ = changer.communicate(timeout=30)
    finally:
        if changer.poll() is None:
            changer.kill()
            changer.communicate()
    changes = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    latencies = _purge_latencies(changes, traffic.seen)
    mismatches = [(i, v.cart(), v.ledger) for i, v in enumerate(traffic.visitors) if v.cart() != v.ledger]
    requests_made = sum(traffic.outcomes.values()) + VISITORS  # and each visitor's first call
    non_2xx = {k: v for k, v in traffic.outcomes.items() if not (isinstance(k, int) and 200 <= k < 300)}
    shown = [latency for latency in latencies if latency is not None]
    figures = {
        "seconds": round(elapsed, 1),
        "visitors": VISITORS,
        "threads": THREADS,
        "requests": requests_made,
        "requests_per_second": round(requests_made / elapsed, 1),
        "adds": sum(sum(v.ledger.values()) for v in traffic.visitors),
        "non_2xx": non_2xx,
        "socket_errors": traffic.outcomes["socket error"],
        "ledger_mismatches": len(mismatches),
        "price_changes": len(changes),
        "purge_latency_seconds": latencies,
        "purge_latency_median": statistics.median(shown) if shown else None,
        "purge_latency_max": max(shown) if shown else None,
    }
    print("load test:", json.dumps(figures))
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "load-test.json").write_text(json.dumps(figures, indent=2) + "\n")

    assert non_2xx == {}, traffic.errors[:5]
    assert mismatches == []
    assert len(changes) == changes_count, output
    assert [Decimal(c["price"]) for c in changes] == [
        Decimal(hot.price) + Decimal(n) / 100 for n in range(1, changes_count + 1)
    ]
    assert None not in latencies, (changes, traffic.seen)
    assert max(latencies) <= PURGE_WITHIN, latencies
