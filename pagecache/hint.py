"""The cart hint: a cookie that lets shared pages show the cart count without asking the server.

A shared page holds no count, and asking for it on every page view would cost every visitor one
uncached request per page. Instead each private answer that changes or shows the cart calls
`set_hint(request, response, count)`, and the kit's script (pagecache/cart.js) reads the cookie:

    name        PAGECACHE_HINT_COOKIE (default "cart_hint")
    value       "<count>.<refresh_after>", e.g. "3.1767225600": the cart's item count, and the Unix
                time (seconds) after which the script shows the count AND asks the cart API once to
                correct it: now + PAGECACHE_HINT_REFRESH_SECONDS (default 600)
    attributes  Path=/, SameSite=Lax, not HttpOnly (the script reads it), Secure when
                SESSION_COOKIE_SECURE, SESSION_COOKIE_DOMAIN, and the session's lifetime (below)

No cart, an empty one, or no session: the cookie is deleted (`clear_hint`), and the script shows 0
without a request. The hint ends with the session: `set_hint` has the session saved with the same
answer, so Django sends the session cookie again with the same Max-Age and the two expire together
(a session that ends at browser close gives a hint that does too). Every cart answer therefore
extends the session, as SESSION_SAVE_EVERY_REQUEST would, but only on the cart's answers.

The server never reads the hint: it is a display hint, worth nothing as input. Varnish drops it on
the way in anyway (shared URLs lose every cookie, private ones keep only Django's), so it never
reaches Django through the stack and never splits a cache.

The badge lags behind a change this browser did not make (a product withdrawn, a cart removed by
`clearcarts` or by a logout's flushed session) until the hint's refresh time: at most
PAGECACHE_HINT_REFRESH_SECONDS after the last cart answer the browser got. Times are compared on
the browser's clock, so a clock that is off shifts that bound by as much.
"""

import time

from django.conf import settings

from pagecache.conf import setting


def set_hint(request, response, count):
    """Set the hint cookie to the cart's count on a private answer (delete it for 0); return the answer."""
    session = _live_session(request)
    if count <= 0 or session is None:
        return clear_hint(response)
    # Saved with this answer, the session's cookie leaves with the same Max-Age as the hint's.
    session.modified = True
    max_age = None if session.get_expire_at_browser_close() else session.get_expiry_age()
    response.set_cookie(
        setting("PAGECACHE_HINT_COOKIE"),
        hint_value(count, time.time()),
        max_age=max_age,
        path="/",
        domain=settings.SESSION_COOKIE_DOMAIN,
        secure=settings.SESSION_COOKIE_SECURE or None,
        httponly=False,
        samesite="Lax",
    )
    return response


def clear_hint(response):
    """Delete the hint cookie: the script then shows an empty cart without a request."""
    response.delete_cookie(
        setting("PAGECACHE_HINT_COOKIE"), path="/", domain=settings.SESSION_COOKIE_DOMAIN, samesite="Lax"
    )
    return response


def hint_value(count, now):
    """Return the cookie's value: the count, and when the script should check it with the server."""
    return f"{int(count)}.{int(now) + int(setting('PAGECACHE_HINT_REFRESH_SECONDS'))}"


def _live_session(request):
    """Return the request's session if it exists on the server, else None.

    Reading it loads it: a session that expired or was deleted then has no key any more.
    """
    session = getattr(request, "session", None)
    if session is None or not session.session_key:
        return None
    session.items()
    return session if session.session_key else None
