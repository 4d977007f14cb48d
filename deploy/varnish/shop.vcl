#
# The store's caching decisions, for one backend (default.vcl) or a director over
# several app nodes (cluster.vcl). Included by them; not loaded on its own.
# The cache contract it implements is in docs/design.md; each decision has a
# varnishtest case in tests/.
#

import cookie;
import std;

# Who may PURGE and BAN: the `purgers` ACL of the file that includes this one
# (default.vcl: this host; cluster.vcl: this host and the app nodes). It is
# matched against client.ip, the TCP peer or the visitor a PROXY-protocol
# terminator reports, never X-Forwarded-For, which anyone can write.


#######################################################################
# Client side

sub vcl_recv {
    call refuse_unknown_methods;
    call canonicalize_url;
    call strip_tracking_params;
    call normalize_accept_encoding;
    call handle_purge_and_ban;
    call pass_health_check;
    call pass_private_urls;
    call strip_shared_cookies;
    call pick_grace;
    # No return: the builtin vcl_recv still runs (Host, method, Authorization).
}

# Decide which methods go on: those Django answers (with a 405 where a URL does
# not take them), and PURGE and BAN, which handle_purge_and_ban keeps to the
# purgers. Any other, TRACE and CONNECT included, is refused here. The builtin
# would pipe it: a raw tunnel to Nginx that none of these rules sees into.
# Compared as strings (case-sensitive, as methods are): a GET costs one strcmp.
sub refuse_unknown_methods {
    if (req.method != "GET" && req.method != "HEAD" && req.method != "POST"
        && req.method != "PUT" && req.method != "PATCH" && req.method != "DELETE"
        && req.method != "OPTIONS" && req.method != "PURGE" && req.method != "BAN") {
        return (synth(501, "Method not implemented"));
    }
}

# Decide the one URL a page is cached and banned under: the path Django will
# route. Nginx decodes %XX escapes, resolves dot segments and merges slashes
# before it hands the path to Django, so /products/%62oot/, /products/./boot/ and
# /products//boot/ all render /products/boot/, each under a cache key of its own
# that the ban of ^/products/boot/ never reaches: a stale price for the TTL. The
# same decoding lets /static/..%2fcart/ look shared here and be /cart/ there.
sub canonicalize_url {
    # One test screens every case below, so that a plain URL (nearly all of
    # them) costs one regex match here instead of five. It looks for a little
    # more than they do (an escape or a "//" in the query too), never less.
    if (req.url !~ "%[0-7]|/\.|//|^(?i:https?:)|^/(?:products|categories)/[^?A-Z]*+[A-Z]") {
        return;
    }
    # Absolute form (GET http://host/path): the URL's host is the one that
    # counts (RFC 9112, 3.2.2), as it is for Nginx.
    if (req.url ~ "^(?i)https?://") {
        set req.http.Host = regsub(req.url, "^(?i)https?://([^/?]*).*$", "\1");
        set req.url = regsub(req.url, "^(?i)https?://[^/?]*/?", "/");
    }
    # No link of the store escapes an ASCII character in a path: slugs, hashed
    # static names and upload names are letters, digits, - _ and dots. Escapes
    # of anything else (UTF-8 in upload names, %C3%A9) stay.
    if (req.url ~ "^[^?]*%[0-7][0-9A-Fa-f]") {
        return (synth(400, "Escaped ASCII in the path"));
    }
    # Browsers resolve . and .. segments before they send a URL.
    if (req.url ~ "^[^?]*/\.\.?(/|\?|$)") {
        return (synth(400, "Dot segment in the path"));
    }
    # Repeated slashes: merged, as Nginx merges them, in the path only.
    if (req.url ~ "^[^?]*//") {
        set req.url = regsuball(regsub(req.url, "\?.*$", ""), "//+", "/") + regsub(req.url, "^[^?]*", "");
    }
    # Slugs are lower case (slugify, the admin's prepopulated field), and MariaDB
    # compares them without case: /products/Boot/ would render boot's page under
    # a key its ban misses. Paths are case-sensitive elsewhere (404 in Django).
    if (req.url ~ "^/(products|categories)/[^?]*[A-Z]") {
        set req.url = std.tolower(regsub(req.url, "\?.*$", "")) + regsub(req.url, "^[^?]*", "");
    }
}

# Decide the URL that keys the cache and reaches Django: without the ad and
# analytics parameters (utm_*, fbclid, gclid) that only the browser's scripts read.
sub strip_tracking_params {
    # Most URLs carry none, nor an empty query to drop: they are left as they
    # are (each rewrite of req.url is a copy and a log record).
    if (req.url !~ "[?&](utm_|fbclid|gclid)|[?&]$") {
        return;
    }
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

# Decide the one Accept-Encoding a page is cached and asked for under: "gzip" or
# none. Browsers write the header in many ways ("gzip, deflate, br", "br;q=1.0,
# gzip;q=0.8"); Django and Nginx answer gzip or identity, nothing else, so under
# Vary: Accept-Encoding every other way of asking would be a copy of its own.
# "gzip;q=0" refuses gzip, as Django reads it too.
#
# Varnish runs with http_gzip_support off (deploy/systemd/varnish.service.d/,
# deploy/stack.py): it keeps the two copies Nginx and Django send, gzip and
# identity, and serves each as stored. With it on (the default) Varnish keeps one
# gzipped copy and gunzips it on every hit for a client without gzip: a cost per
# request that `make bench` measures (docs/bench/), paid to save one copy.
sub normalize_accept_encoding {
    if (!req.http.Accept-Encoding) {
        return;
    }
    if (req.http.Accept-Encoding ~ "(?i)\bgzip\b" &&
        req.http.Accept-Encoding !~ "(?i)\bgzip\s*;\s*q=0(\.0*)?\s*(,|$)") {
        set req.http.Accept-Encoding = "gzip";
    } else {
        unset req.http.Accept-Encoding;
    }
}

# Decide what the client learns about the cache: X-Cache HIT when the object
# came from the cache (graced hits too), MISS otherwise (misses, passes).
# Age is left as Varnish sets it; x-url is internal to bans, x-synthetic marks
# the answers vcl_backend_error wrote.
sub vcl_deliver {
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
    unset resp.http.x-url;
    call add_server_timing;
    # Only vcl_backend_error's answers carry it, and they are all 503s.
    if (resp.status == 503 && resp.http.x-synthetic) {
        call add_security_headers;
        unset resp.http.x-synthetic;
    }
}

# Record how the edge fetched what it answers, for Server-Timing: to store it
# (MISS), or never to store it (PASS). A copy from the cache needs no note:
# vcl_deliver sees obj.hits and obj.ttl. The builtins still run after.
sub vcl_miss {
    set req.http.x-edge-outcome = "MISS";
}

sub vcl_pass {
    set req.http.x-edge-outcome = "PASS";
}

sub vcl_backend_fetch {
    call sanitize_edge_headers;
    call set_forwarded_proto;
}

# Decide which forwarding headers reach Django: none a client wrote. Some
# frameworks and proxies obey these to rewrite the host, URL or method.
# Removed from the fetch, not the request: a hit never reaches Django, so it
# need not pay for them. The x-edge-outcome note is the edge's own.
sub sanitize_edge_headers {
    unset bereq.http.X-Forwarded-Host;
    unset bereq.http.X-Original-URL;
    unset bereq.http.X-Rewrite-URL;
    unset bereq.http.X-HTTP-Method-Override;
    unset bereq.http.Forwarded;
    unset bereq.http.x-edge-outcome;
}

# Decide the scheme Django is told the visitor used (it trusts X-Forwarded-Proto
# only with HTTPS=1): taken from the listener the request came in on, never from
# a header. A TLS terminator connects to the listener named "tls", e.g.
#     varnishd -a 127.0.0.1:6081 -a tls=127.0.0.1:6443,PROXY
# speaking PROXY so that client.ip is the visitor; everything else is plain HTTP.
# Set on every fetch (misses, passes, background refreshes), never on a hit.
sub set_forwarded_proto {
    if (local.socket == "tls") {
        set bereq.http.X-Forwarded-Proto = "https";
    } else {
        set bereq.http.X-Forwarded-Proto = "http";
    }
}

# Decide what Server-Timing says of the edge: how it answered and, for a copy,
# its age in seconds, after Django's part, which says how that copy was made
# (so a hit reads "rendered by Django in 8 ms, 12 s ago, served by Varnish").
# A copy is fresh (HIT) or stale, served while one refresh runs or the backend
# is sick (GRACE). Nothing in it is per visitor. One header write per answer
# (each rewrite of a response header scans all of them); the regsub drops the
# ", " left in front when the backend sent no Server-Timing (a static file).
sub add_server_timing {
    if (obj.hits > 0 && obj.ttl > 0s) {
        set resp.http.Server-Timing = regsub(resp.http.Server-Timing
            + {", varnish;desc="HIT", varnish-age;desc=""} + resp.http.Age + {"""}, "^, ", "");
    } elsif (obj.hits > 0) {
        set resp.http.Server-Timing = regsub(resp.http.Server-Timing
            + {", varnish;desc="GRACE", varnish-age;desc=""} + resp.http.Age + {"""}, "^, ", "");
    } else {
        set resp.http.Server-Timing = regsub(resp.http.Server-Timing
            + {", varnish;desc=""} + req.http.x-edge-outcome + {"""}, "^, ", "");
    }
}

# Decide the body of Varnish's own answers (PURGE, BAN, refused requests): one
# line, JSON under /api/ as Django's errors are there, never the builtin's HTML
# page; a 503 (rare here: a workspace overflow) says when to try again.
sub vcl_synth {
    call add_security_headers;
    if (req.url ~ "^/api/" && req.method != "PURGE" && req.method != "BAN") {
        set resp.http.Content-Type = "application/json";
        set resp.body = {"{"error": ""} + resp.reason + {"" }
"};
    } else {
        set resp.http.Content-Type = "text/plain; charset=utf-8";
        set resp.body = resp.reason + {"
"};
    }
    if (resp.status == 503) {
        set resp.http.Retry-After = "10";
    }
    # Return here, or the builtin replaces the body with its HTML page.
    return (deliver);
}

# Decide the security headers of Varnish's own answers: the ones Django gives
# its answers (config/settings.py: SECURE_*, X_FRAME_OPTIONS and the
# CONTENT_SECURITY_POLICY, in the same words). Nginx gives its files and errors
# the same (deploy/nginx/security_headers.conf); a stack test compares all three.
sub add_security_headers {
    set resp.http.X-Content-Type-Options = "nosniff";
    set resp.http.Referrer-Policy = "same-origin";
    set resp.http.X-Frame-Options = "DENY";
    set resp.http.Cross-Origin-Opener-Policy = "same-origin";
    set resp.http.Content-Security-Policy = "default-src 'self'; script-src 'self'; "
        + "style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; "
        + "base-uri 'self'; form-action 'self'; frame-ancestors 'none'";
}


#######################################################################
# Backend side

sub vcl_backend_response {
    call abandon_failed_refresh;
    call keep_https_redirects_unstored;
    call set_grace;
    call use_surrogate_control;
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

# Decide that a redirect to HTTPS is never stored. With HTTPS=1 Django answers
# a plain-HTTP request (X-Forwarded-Proto: http) with a 301 to https://, and
# Varnish would cache it for its default TTL under the page's key, which has no
# scheme: the visitors who came over TLS would then get it too, and go round in
# a loop. Hit-for-miss, as the builtin does: the next request is fetched.
sub keep_https_redirects_unstored {
    if (bereq.http.X-Forwarded-Proto == "http" && beresp.status >= 300 && beresp.status < 400
        && beresp.http.Location ~ "^(?i)https://") {
        set beresp.ttl = 120s;
        set beresp.uncacheable = true;
        return (deliver);
    }
}

# Decide how long an object outlives its TTL for grace: 6 h, to ride out an
# outage. No beresp.keep: these 6 h already let Varnish revalidate a stale
# object with If-None-Match / If-Modified-Since when Django sends validators.
sub set_grace {
    set beresp.grace = 6h;
}

# Decide the edge's own lifetime: Django's Surrogate-Control (the Edge
# Architecture header, meant for the surrogate nearest the origin) wins over
# Cache-Control here, and is consumed: removed, so that no cache in front applies
# it too. Its max-age counts from the render, so the Age Django sent is taken off,
# as Varnish does for s-maxage; its stale-if-error is the grace. Varnish 7.1 reads
# neither it nor CDN-Cache-Control by itself (tests/surrogate_control_*.vtc).
sub use_surrogate_control {
    if (beresp.http.Surrogate-Control ~ "(?i)(^|[ ,])max-age=[0-9]+") {
        set beresp.ttl = std.duration(regsub(beresp.http.Surrogate-Control,
            "(?i)^(.*[ ,])?max-age=([0-9]+).*$", "\2") + "s", 0s)
            - std.duration(beresp.http.Age + "s", 0s);
    }
    if (beresp.http.Surrogate-Control ~ "(?i)stale-if-error=[0-9]+") {
        set beresp.grace = std.duration(regsub(beresp.http.Surrogate-Control,
            "(?i)^.*stale-if-error=([0-9]+).*$", "\1") + "s", 6h);
    }
    unset beresp.http.Surrogate-Control;
}

# Record the URL on the object, so bans can match objects without a request.
sub mark_url_for_bans {
    set beresp.http.x-url = bereq.url;
}

# Decide what a visitor gets when no answer came from Nginx (refused, timed out
# after first_byte_timeout, or the backend is sick and nothing is in grace): a
# 503 that says when to try again, as Django's own 503 does (Retry-After: 10,
# shop/middleware.py), JSON under /api/, a short page elsewhere. A failed
# background refresh also ends here, but its object never replaces the stale one.
sub vcl_backend_error {
    set beresp.http.Retry-After = "10";
    set beresp.http.Cache-Control = "private, no-store";
    set beresp.http.x-synthetic = "1";
    if (bereq.url ~ "^/api/") {
        set beresp.http.Content-Type = "application/json";
        set beresp.body = {"{"error": "The store is briefly unavailable; try again shortly." }"};
    } else {
        set beresp.http.Content-Type = "text/html; charset=utf-8";
        set beresp.body = {"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Back in a moment</title></head>
<body>
<h1>We'll be right back</h1>
<p>This part of the shop is briefly unavailable. Please try again in a few seconds.</p>
</body>
</html>
"};
    }
    # Return here, or the builtin replaces the body with its HTML page.
    return (deliver);
}
