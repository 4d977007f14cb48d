"""Server-Timing: how each answer was made, in the header browsers show in their developer tools.

Django's part names the cache outcome of a shared page (`HIT`, `STALE`, `MISS`) and, when it
rendered, the time and the number of database queries the render took; every other answer gets
its time and queries. Nothing in it is per visitor: a copy served to everyone says how that copy
was made. The edge appends its own part (deploy/varnish/shop.vcl).
"""

import time
from contextlib import ExitStack, contextmanager

from django.db import connections


class Measure:
    """The time and database queries of one block of work."""

    def __init__(self):
        self.queries = 0
        self.seconds = 0.0

    def count(self, execute, sql, params, many, context):
        self.queries += 1
        return execute(sql, params, many, context)


@contextmanager
def measured():
    """Time the block and count the queries it sends to any database."""
    measure = Measure()
    start = time.perf_counter()
    with ExitStack() as stack:
        for connection in connections.all():
            stack.enter_context(connection.execute_wrapper(measure.count))
        try:
            yield measure
        finally:
            measure.seconds = time.perf_counter() - start


def add_server_timing(response, outcome=None, measure=None):
    """Add Django's part of Server-Timing: the outcome, and the cost of the work if measured."""
    entry = "django"
    if outcome:
        entry += f';desc="{outcome}"'
    if measure is not None:
        entry += f";dur={measure.seconds * 1000:.1f}, django-db;desc=\"{measure.queries} queries\""
    response["Server-Timing"] = entry
    return response
