"""Answer a lost database with a styled 503 instead of a traceback or a bare 500."""

import logging

from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from django.shortcuts import render

from pagecache.decorators import mark_private
from shop.api import answers_json

logger = logging.getLogger(__name__)

# Seconds a client (or a load balancer) should wait before trying again.
RETRY_AFTER_SECONDS = 10


class DatabaseUnavailableMiddleware:
    """Turn database connection failures into 503 + Retry-After, JSON for the API.

    Cached pages go on being served by Varnish's grace and by Django's cache meanwhile; only
    what needs the database answers 503, and it says so in the store's look. `CONN_HEALTH_CHECKS`
    makes the first request after the database comes back reconnect, so recovery needs nobody.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        # OperationalError and InterfaceError are what a refused, lost or timed-out connection
        # raises; other database errors (a bad query, a constraint) stay 500s.
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        logger.error("database unavailable on %s: %s", request.path, exception)
        if answers_json(request):
            response = JsonResponse({"error": "The store is briefly unavailable; try again shortly."}, status=503)
        else:
            response = render(request, "503.html", status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return mark_private(response)

