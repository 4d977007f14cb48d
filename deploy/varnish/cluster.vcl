#
# Varnish in front of several app servers: Varnish :6081 -> a director -> Nginx :8081 on
# each app node -> uWSGI -> Django. Load it instead of default.vcl when there is more
# than one app node:
#     varnishd -a :6081 -f /srv/shop/deploy/varnish/cluster.vcl ...
#
# This file holds the app nodes and the director; every caching decision is in
# shop.vcl, included at the end, exactly as default.vcl includes it for one node.
#
# Which director, and why: round robin. Every node keeps its Django cache in the same
# Redis or memcached (CACHE_URL), so a page Django cached on one node is a hit on all of
# them, and spreading requests evenly is all that is left to decide. A hash on the URL
# would pay off only with a cache per node (locmem, or a Redis on each node): each URL
# would always reach the node that cached it. But it also sends every miss of a hot page
# to one node, and sessions need no stickiness here (they live in the database). Varnish
# already collapses the misses of one URL into one fetch, so a node only ever sees the
# misses and the private URLs (cart, API, admin), which any node answers alike.
#
# The addresses below are examples for three app servers on a private network. Write
# yours; deploy/stack.py runs this file on loopback (127.0.0.2, 127.0.0.3, ...), replacing
# only the addresses, the port and the number of nodes. deploy/varnish/run_vtc.sh aims it
# at fake backends the same way. docs/scale-out.md is the deploy guide.
#
vcl 4.1;

import directors;

# The health check of every node: the same probe default.vcl gives its one backend.
probe healthz {
    # Host must be in Django's ALLOWED_HOSTS, or /healthz answers 400.
    .request =
        "GET /healthz HTTP/1.1"
        "Host: localhost"
        "User-Agent: Varnish health probe"
        "Connection: close";
    .interval = 2s;
    .timeout = 1s;
    # Healthy while 3 of the last 5 probes pass: a stopped node leaves the director
    # within about 6 s, and a restarted one rejoins after 3 good probes (about 6 s).
    .window = 5;
    .threshold = 3;
    # Start healthy, so traffic flows at once after a start or a VCL reload.
    .initial = 3;
}

# One backend per app node: Nginx, which serves /static/ and /media/ itself and
# proxies the rest to that node's uWSGI. The timeouts are default.vcl's, for the
# same reasons.
backend node1 {
    .host = "10.0.0.11";
    .port = "8081";
    .connect_timeout = 1s;
    .first_byte_timeout = 10s;
    .between_bytes_timeout = 5s;
    .probe = healthz;
}

backend node2 {
    .host = "10.0.0.12";
    .port = "8081";
    .connect_timeout = 1s;
    .first_byte_timeout = 10s;
    .between_bytes_timeout = 5s;
    .probe = healthz;
}

backend node3 {
    .host = "10.0.0.13";
    .port = "8081";
    .connect_timeout = 1s;
    .first_byte_timeout = 10s;
    .between_bytes_timeout = 5s;
    .probe = healthz;
}

# Who may PURGE and BAN (shop.vcl's handle_purge_and_ban): Django, which runs on every
# app node and sends a BAN when the catalog changes, and this host. Matched against
# client.ip, never X-Forwarded-For. A TLS terminator on this host must speak PROXY (see
# shop.vcl's set_forwarded_proto); without it every visitor would arrive from 127.0.0.1.
acl purgers {
    "127.0.0.1";
    "::1";
    # The app nodes' private network (the backends above): write yours.
    "10.0.0.0"/24;
}

# The director: takes the healthy nodes in turn and skips the sick ones. To take a node
# out for a deploy: varnishadm backend.set_health node2 sick (and `auto` to bring it back).
sub vcl_init {
    new app = directors.round_robin();
    app.add_backend(node1);
    app.add_backend(node2);
    app.add_backend(node3);
}


#######################################################################
# Client side
#
# VCL joins subroutines of the same name in the order it reads them: this vcl_recv runs
# before shop.vcl's, so its decisions (and its grace choice, std.healthy(req.backend_hint),
# which for a director means "is any node healthy") apply to the director.

sub vcl_recv {
    call pick_app_node;
}

# Decide which app node a request goes to: any healthy one, in turn.
sub pick_app_node {
    set req.backend_hint = app.backend();
}


#######################################################################
# Backend side

sub vcl_backend_error {
    call retry_on_another_node;
}

sub vcl_backend_response {
    call retry_bad_gateway;
}

# Decide what happens when a node cannot be reached or breaks off (refused, reset,
# timed out): the request is tried once more, and round robin hands the retry to the
# next node. Until the probe marks a stopped node sick (up to 6 s), this is what spares
# the requests that come its way. Only what may safely be sent twice is: a GET or HEAD,
# or a request with a body. Varnish sends a body once (it is not cached), so when a node
# took the body and then failed, and may have applied the change, the retry fails and
# the visitor gets the error; a request the node never received is resent whole. A
# bodiless POST or DELETE is never resent.
sub retry_on_another_node {
    if (bereq.retries == 0 && (bereq.method == "GET" || bereq.method == "HEAD"
        || bereq.http.Content-Length ~ "^[1-9]" || bereq.http.Transfer-Encoding)) {
        return (retry);
    }
}

# Decide the same for a node whose Nginx answers but cannot reach its uWSGI (a 502, or
# the 503 page Nginx makes of it) or whose Django reports the database down (503):
# another node may do better. Only a GET or HEAD: any body already went to that node,
# so nothing else could be resent.
sub retry_bad_gateway {
    if (beresp.status >= 502 && beresp.status <= 503 && bereq.retries == 0
        && (bereq.method == "GET" || bereq.method == "HEAD")) {
        return (retry);
    }
}

# Every decision: which URLs are shared or private, cookies, grace, purges, X-Cache.
# A relative include starting with ./ is read next to this file.
include "./shop.vcl";
