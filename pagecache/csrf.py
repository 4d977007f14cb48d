"""The CSRF side of the Ajax cart kit: a failure view that answers the API in JSON.

Shared pages carry no CSRF token (a token is per visitor). The kit's script reads the token from
the `csrftoken` cookie, which the private API hands out, and sends it in `X-CSRFToken`. When the
check fails, Django calls CSRF_FAILURE_VIEW: under the JSON paths (PAGECACHE_JSON_PATHS) this one
answers `{"error": ...}` with 403, so the script can show the message; elsewhere it renders the
project's `403_csrf.html` (Django's own page if there is none). Never cached.

    CSRF_FAILURE_VIEW = "pagecache.csrf.csrf_failure"
"""

from django.http import HttpResponseForbidden, JsonResponse
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string
from django.views.csrf import csrf_failure as django_csrf_failure

from pagecache.conf import setting
from pagecache.decorators import mark_private

JSON_MESSAGE = "CSRF check failed: send the csrftoken cookie's value in X-CSRFToken."


def csrf_failure(request, reason=""):
    """Answer a failed CSRF check: JSON on the API, the project's 403 page elsewhere."""
    if any(request.path.startswith(prefix) for prefix in setting("PAGECACHE_JSON_PATHS")):
        response = JsonResponse({"error": JSON_MESSAGE}, status=403)
    else:
        try:
            response = HttpResponseForbidden(render_to_string("403_csrf.html", {"reason": reason}, request=request))
        except TemplateDoesNotExist:
            response = django_csrf_failure(request, reason)
    return mark_private(response)
