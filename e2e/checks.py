"""The checks, in the order they run, and the runner that turns each into report rows."""

import importlib
import time
import traceback

from e2e.discover import discover
from e2e.http import Client, Pacer
from e2e.results import FAIL, PASS, Row, not_run

# name -> "module:function"; each function takes the Run and yields Rows. Imported when run,
# so that a run without the browser check needs no Selenium.
CHECKS = {
    "shared-pages": "e2e.contract:shared_pages",
    "private-pages": "e2e.contract:private_pages",
    "cart-isolation": "e2e.cart:cart_isolation",
    "no-js-add": "e2e.cart:no_js_add",
    "static-files": "e2e.hygiene:static_files",
    "security-headers": "e2e.hygiene:security_headers",
    "not-found": "e2e.hygiene:not_found",
    "head": "e2e.hygiene:head",
    "browsers": "e2e.browser:browsers",
    "admin-purge": "e2e.admin:admin_purge",
}


class Run:
    """One run against one deployment: its settings, its pacing, what discovery found."""

    def __init__(self, settings):
        self.settings = settings
        self.base = settings.base
        self.pacer = Pacer(settings.delay)
        self.site = None
        self.signals = set()  # which headers told an edge hit, for the report

    def client(self, name="visitor"):
        """Return a new visitor with an empty cookie jar."""
        return Client(self.settings, self.pacer, name)

    def visitor_with_cookies(self, name="returning visitor"):
        """Return a visitor holding the cookies a shopper's browser gets from the cart API."""
        visitor = self.client(name)
        visitor.get(self.site.cart_api)
        return visitor


def run_checks(run, selected, progress=None):
    """Discover the samples, then run each selected check; return every row (each also to `progress`)."""
    rows = []
    for result in _rows(run, selected):
        rows.append(result)
        if progress:
            progress(result)
    return rows


def _rows(run, selected):
    began = time.monotonic()
    try:
        run.site = discover(run.base, run.client("discovery"))
    except Exception as error:  # any failure is a finding to report, not a crash
        yield Row("discover", FAIL, _describe(error), time.monotonic() - began)
        yield from (not_run(name, "discovery failed") for name in CHECKS)
        return
    yield Row("discover", PASS, ", ".join(run.site.shared), time.monotonic() - began)
    for name, target in CHECKS.items():
        if name in selected:
            yield from _run_one(run, name, target)
        else:
            yield not_run(name, "not selected")


def _run_one(run, name, target):
    """Yield one check's rows; an exception ends it with a FAIL row that says where it stopped."""
    began = time.monotonic()
    try:
        module, function = target.split(":")
        for result in getattr(importlib.import_module(module), function)(run):
            result.seconds = time.monotonic() - began
            yield result
            began = time.monotonic()
    except Exception as error:  # a broken check must not hide the others
        yield Row(name, FAIL, _describe(error), time.monotonic() - began)


def _describe(error):
    """Return an exception as one line, with where it was raised."""
    where = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    at = f" (at {where.filename.rsplit('/', 1)[-1]}:{where.lineno})" if where else ""
    return f"{type(error).__name__}: {error}{at}"
