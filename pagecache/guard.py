"""The visitor-state guard: a shared page must not depend on who asked for it.

A page that read the session, asked for a CSRF token or a CSP nonce, or set a cookie is per
visitor: stored, it would hand one visitor's session, token or cookie to everyone. Such a page is
never stored. In production that is logged as an error and the answer is made private; with
`DEBUG` on it raises `VisitorStateError`, which says what happened and where, so the mistake is
found on the developer's first page view rather than in a hit rate.
"""

import logging

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

# Where each kind of touch usually comes from, for the error message.
_HINTS = {
    "session": "request.session, {{ user }}, {{ messages }} or a context processor that reads them",
    "csrf": "{% csrf_token %} or get_token() (post to a private URL, or let the Ajax kit send the token)",
    "csp-nonce": "{{ request.csp_nonce }} (use a script file instead of an inline script)",
    "cookie": "response.set_cookie() in the view or a middleware below SharedPageMiddleware",
}


class VisitorStateError(ImproperlyConfigured):
    """A shared page touched per-visitor state (raised with DEBUG on)."""

    def __init__(self, message, reasons):
        super().__init__(message)
        self.reasons = reasons


def visitor_state_touched(request, response):
    """Return what rendering touched of the visitor: a list of "session", "csrf", "csp-nonce", "cookie"."""
    session = getattr(request, "session", None)
    # Below SharedPageMiddleware, CsrfViewMiddleware has already turned a token request into its
    # cookie by the time the page is stored: the cookie's name tells what was touched.
    cookies = set(response.cookies)
    touched = []
    if (session is not None and session.accessed) or settings.SESSION_COOKIE_NAME in cookies:
        touched.append("session")
    if request.META.get("CSRF_COOKIE_NEEDS_UPDATE") or settings.CSRF_COOKIE_NAME in cookies:
        touched.append("csrf")
    # A nonce (django-csp's `request.csp_nonce`) is as per-response as a token: a stored copy
    # would hand every visitor the same one, and a nonce known in advance protects nothing.
    if getattr(request, "_csp_nonce", None):
        touched.append("csp-nonce")
    if cookies - {settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME}:
        touched.append("cookie")
    return touched


def refuse(request, response, touched):
    """Report a shared page that touched visitor state: raise with DEBUG, else log an error."""
    message = describe(request, response, touched)
    if settings.DEBUG:
        raise VisitorStateError(message, touched)
    logger.error(message, extra={"pagecache_reasons": touched})


def describe(request, response, touched):
    """Say what a shared page touched and where to look for it."""
    match = getattr(request, "resolver_match", None)
    view = f"{match._func_path} (URL name {match.view_name!r})" if match else "its view"
    templates = getattr(response, "template_name", None)
    where = f"{view}, templates {templates!r}" if templates else view
    lines = [f"The shared page {request.path} touched visitor state, so it is not cached: {', '.join(touched)}."]
    lines.append(f"Rendered by {where}.")
    if response.cookies:
        lines.append(f"Cookies set: {', '.join(sorted(response.cookies))}.")
    lines += [f"  {kind}: look for {_HINTS[kind]}" for kind in touched]
    return "\n".join(lines)
