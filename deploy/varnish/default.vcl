#
# Varnish in front of the store: Varnish :6081 -> Nginx :8081 -> uWSGI -> Django.
#
# What this file decides (the cache contract is in docs/design.md):
#   shared URLs   everything not listed below: request cookies dropped, cached for
#                 the TTL Django sends, served stale (grace) while Django is slow or down
#   private URLs  /admin/, /cart/, /api/: passed, with Django's own cookies only
#   /healthz      passed, and used as the backend probe
#   PURGE, BAN    from the purgers ACL only; Django sends them when a product changes
#
# Varnish appends its builtin.vcl to this file, and every subroutine here falls
# through to it. The builtin passes methods other than GET/HEAD and requests with
# Authorization, never caches a response with Set-Cookie, Cache-Control private,
# no-cache or no-store, or no TTL, and hashes on URL + Host. That key is kept
# as is: the query string is part of the URL (/search/?q=, ?page=N), Host keeps
# two sites behind one Varnish apart, and the scheme needs no place in it, since
# behind TLS every page comes through the terminator (set_forwarded_proto).
#
# This file holds the backend; the decisions are in shop.vcl, which it includes and
# which cluster.vcl (several app nodes behind a director) includes too.
# Each decision has a varnishtest case in tests/; run them with run_vtc.sh.
#
vcl 4.1;

# Nginx, which serves /static/ and /media/ itself and proxies the rest to uWSGI.
# `make stack` renders the port by plain string replacement: write it only here.
backend nginx {
    .host = "127.0.0.1";
    .port = "8081";
    # Nginx is on loopback: a connection that takes longer than 1 s is not coming.
    .connect_timeout = 1s;
    # A page not started after 10 s has hung: give up on it (a background refresh
    # keeps the stale copy) rather than hold the visitor for the default 60 s.
    # Every layer inside gives up first: the database (5 s), uWSGI's harakiri (8 s),
    # Nginx (9 s); so the visitor gets their 503, and nothing is left half done.
    .first_byte_timeout = 10s;
    # Once started, a page streams: 5 s of silence means it stalled.
    .between_bytes_timeout = 5s;
    .probe = {
        # Host must be in Django's ALLOWED_HOSTS, or /healthz answers 400; with
        # HTTPS=1, /healthz must also be exempt from the SSL redirect (301).
        .request =
            "GET /healthz HTTP/1.1"
            "Host: localhost"
            "User-Agent: Varnish health probe"
            "Connection: close";
        .interval = 2s;
        .timeout = 1s;
        # Healthy while 3 of the last 5 probes pass: one slow probe is not an
        # outage, and a dead backend is marked sick within about 6 s.
        .window = 5;
        .threshold = 3;
        # Start healthy, so traffic flows at once after a start or a VCL reload.
        .initial = 3;
    }
}

# Who may PURGE and BAN: Django on this host. Matched against client.ip, the TCP
# peer or the visitor a PROXY-protocol terminator reports, never X-Forwarded-For,
# which anyone can write. A TLS terminator on this host must speak PROXY (see
# set_forwarded_proto); without it every visitor would arrive from 127.0.0.1.
acl purgers {
    "127.0.0.1";
    "::1";
}

# Every decision: which URLs are shared or private, cookies, grace, purges, X-Cache.
# A relative include starting with ./ is read next to this file.
include "./shop.vcl";
