"""pagecache: shared pages cached by Django and by the edge, per-visitor data kept out of them.

A shop-agnostic Django app. Each view declares one class with one decorator:

    shared   @shared_page      same HTML for everyone; cached here and by Varnish, purged on change
    private  @private_page     per visitor (cart, API); never stored by anyone, varies on Cookie
    health   @health_check     liveness for probes; never stored

Three caches hold a shared page, each bounded by the same TTL so they never stack:

    browser  `max-age=BROWSER_CACHE_SECONDS`  short: a browser cannot be purged
    edge     `s-maxage=SHARED_PAGE_SECONDS` minus `Age`; banned when the data changes (edge.py)
    Django   the cache framework (database table, Redis, memcached or locmem; store.py)

The modules, one concern each:

    conf.py          every setting, its default and its meaning
    keys.py          the cache key of a page: path, the parameters the view reads, the encoding
    store.py         stored entries (identity and gzip, ETag, Age) and cache I/O that never raises
    policy.py        the rules of a shared page: hit, 304, lock, stale, render, store
    guard.py         the check that a shared page touched no visitor state
    decorators.py    shared_page, private_page, health_check, not_found_page
    middleware.py    SharedPageMiddleware: fresh hits answered before the session layers run
    invalidation.py  drop pages by URL or by group, in Django's cache and at the edge
    edge.py          the Varnish client: BAN requests that never raise
    backends.py      Django's cache backends minus per-request waste
    timing.py        Server-Timing: how each answer was made
    checks.py        system checks for the misconfigurations that silently stop caching
    audit.py         what `manage.py cache_audit` finds for each URL

The Ajax cart kit, which puts per-visitor data on shared pages without a request per page view:

    static/pagecache/cart.js     the badge from the hint cookie, add-to-cart through the JSON API
    templates/pagecache/         cart_badge.html and add_to_cart.html, the snippets shared pages use
    hint.py                      the hint cookie that private cart answers set
    csrf.py                      the CSRF failure view: JSON for the API, HTML elsewhere
    templatetags/pagecache.py    what the snippets need from settings
"""
