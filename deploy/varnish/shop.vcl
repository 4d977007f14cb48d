#
# The store's caching decisions, for one backend (default.vcl) or a director over
# several app nodes (cluster.vcl). Included by them; not loaded on its own.
# The cache contract it implements is in DESIGN.md; each decision has a
# varnishtest case in tests/.
#

import cookie;
import std;

# Who may PURGE and BAN: Django on this host. Matched against client.ip, the TCP
# peer or the visitor a PROXY-protocol terminator reports, never X-Forwarded-For,
# which anyone can write. A TLS terminator on this host must speak PROXY (see
# set_forwarded_proto); without it every visitor would arrive from 127.0.0.1.
acl purgers {
    "127.0.0.1";
    "::1";
}


#######################################################################
# Client side

sub vcl_recv {
    call sanitize_edge_headers;
    call set_forwarded_proto;
    call strip_tracking_params;
    call handle_purge_and_ban;
    call pass_health_check;
    call pass_private_urls;
    call strip_shared_cookies;
    call pick_grace;
    # No return: the builtin vcl_recv still runs (Host, method, Authorization).
}

# Decide which forwarding headers reach Django: none a client wrote. Some
# frameworks and proxies obey these to rewrite the host, URL or method.
sub sanitize_edge_headers {
    unset req.http.X-Forwarded-Host;
    unset req.http.X-Original-URL;
    unset req.http.X-Rewrite-URL;
    unset req.http.X-HTTP-Method-Override;
    unset req.http.Forwarded;
}

# Decide the scheme Django is told the visitor used (it trusts X-Forwarded-Proto
# only with HTTPS=1): taken from the listener the request came in on, never from
# a header. A TLS terminator connects to the listener named "tls", e.g.
#     varnishd -a 127.0.0.1:6081 -a tls=127.0.0.1:6443,PROXY
# speaking PROXY so that client.ip is the visitor; everything else is plain HTTP.
sub set_forwarded_proto {
    if (local.socket == "tls") {
        set req.http.X-Forwarded-Proto = "https";
    } else {
        set req.http.X-Forwarded-Proto = "http";
    }
}

# Decide the URL that keys the cache and reaches Django: without the ad and
# analytics parameters (utm_*, fbclid, gclid) that only the browser's scripts read.
sub strip_tracking_params {
    set req.url = regsuball(req.url, "(?<=[?&])(utm_[^&=]*|fbclid|gclid)(=[^&]*)?(&|$)", "");
    set req.url = regsub(req.url, "[?&]$", "");
}

# Decide what PURGE and BAN do: invalidate for the purgers ACL, 405 for anyone else.
sub handle_purge_and_ban {
    if (req.method == "PURGE" || req.method == "BAN") {
        if (client.ip !~ purgers) {
            return (synth(405, "Not allowed"));
        }
        if (req.method == "PURGE") {
            # The object at this URL + Host, every Vary variant of it.
            return (purge);
        }
        # X-Ban-Path is one regex over paths, without spaces, such as
        # "^/$|^/search/|^/categories/shoes/|^/products/boot/". The ban reads only
        # obj.http.x-url, so it applies to every Host, and the ban lurker can evict
        # in the background instead of testing each object on its next lookup.
        if (std.ban("obj.http.x-url ~ " + req.http.X-Ban-Path)) {
            return (synth(200, "Banned"));
        }
        return (synth(400, std.ban_error()));
    }
}

# Decide that /healthz is never cached.
sub pass_health_check {
    if (req.url ~ "^/healthz(\?|$)") {
        # Probes and load balancers must hear from Django now, not from the cache.
        return (pass);
    }
}

# Decide which URLs are private: they answer per session, so they go to Django
# with the session and never into the cache.
sub pass_private_urls {
    if (req.url ~ "^/(admin|cart|api)/") {
        call keep_django_cookies;
        # Per-user pages and the cart API: the session decides the answer.
        return (pass);
    }
}

# Decide which cookies reach Django: its own, not analytics or ad cookies.
# The names must match settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME
# and the cookie of django.contrib.messages (the admin's "saved" notices travel
# in it under the default FallbackStorage).
sub keep_django_cookies {
    cookie.parse(req.http.Cookie);
    cookie.keep("sessionid,csrftoken,messages");
    set req.http.Cookie = cookie.get_string();
    if (req.http.Cookie == "") {
        unset req.http.Cookie;
    }
}

# Decide that shared pages ignore cookies: they are the same for every visitor,
# so a cookie (_ga, even sessionid) must neither split the cache nor reach Django.
sub strip_shared_cookies {
    unset req.http.Cookie;
}

# Decide how stale a cached page may be served. While Django is healthy, up to
# 10 s past its TTL: the first visitor triggers one background refresh and
# everyone gets the stale copy meanwhile. While it is sick, the whole
# beresp.grace (6 h) applies.
sub pick_grace {
    if (std.healthy(req.backend_hint)) {
        set req.grace = 10s;
    }
}

# Accept-Encoding needs no code: with http_gzip_support (on by default) Varnish
# turns it into "gzip" or nothing after vcl_recv, asks Nginx for gzip, and
# gunzips for the rare client without it. Vary: Accept-Encoding then keeps one
# copy of a page, not one per browser's way of writing the header.

# Decide what the client learns about the cache: X-Cache HIT when the object
# came from the cache (graced hits too), MISS otherwise (misses, passes).
# Age is left as Varnish sets it; x-url is internal to bans.
sub vcl_deliver {
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
    unset resp.http.x-url;
}

# Decide the body of PURGE and BAN answers: one line, not the HTML error page.
sub vcl_synth {
    if (req.method == "PURGE" || req.method == "BAN") {
        set resp.http.Content-Type = "text/plain; charset=utf-8";
        set resp.body = resp.reason + {"
"};
        # Return here, or the builtin replaces the body with its HTML page.
        return (deliver);
    }
}


#######################################################################
# Backend side

sub vcl_backend_response {
    call abandon_failed_refresh;
    call set_grace;
    call mark_url_for_bans;
    # No return: the builtin decides cacheability (Set-Cookie, Cache-Control, TTL).
}

# Decide what a failed background refresh replaces: nothing. Dropping its 5xx
# keeps the stale page for visitors. Any other 5xx goes to the visitor uncached:
# Varnish gives 5xx no TTL whatever their Cache-Control says, and the builtin
# then makes them hit-for-miss. (A refresh that cannot reach the backend at all
# goes to vcl_backend_error, whose error object does not replace the stale one.)
sub abandon_failed_refresh {
    if (bereq.is_bgfetch && beresp.status >= 500) {
        return (abandon);
    }
}

# Decide how long an object outlives its TTL for grace: 6 h, to ride out an
# outage. No beresp.keep: these 6 h already let Varnish revalidate a stale
# object with If-None-Match / If-Modified-Since when Django sends validators.
sub set_grace {
    set beresp.grace = 6h;
}

# Record the URL on the object, so bans can match objects without a request.
sub mark_url_for_bans {
    set beresp.http.x-url = bereq.url;
}
