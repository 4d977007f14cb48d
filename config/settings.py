"""Settings for the store, read from the environment with working local defaults.

Every value a deployment changes is an environment variable (see the README's table). The local
defaults run the demo: SQLite and the database cache table, nothing else to install. Production
refuses to start without a real SECRET_KEY.
"""

import os
import tempfile
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

# The design (docs/design.md) spells the in-process cache `locmem://`; django-environ calls it `locmemcache://`.
environ.Env.CACHE_SCHEMES.setdefault("locmem", "django.core.cache.backends.locmem.LocMemCache")

env = environ.Env()


# ------------------------------------------------------------------------------------------------
# Core
# ------------------------------------------------------------------------------------------------

DEBUG = env.bool("DEBUG", default=False)

# SHOP_DEMO=1 is set by `make demo`, `make test` and `make stack`: it allows the built-in,
# public key below. Anywhere else a missing or weak key stops the process at import time.
SHOP_DEMO = env.bool("SHOP_DEMO", default=False)
DEMO_SECRET_KEY = "demo-only-insecure-key-never-use-in-production-7c1f0e2b9a4d4f3e8b6a5c2d1e0f9a8b"
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY and (DEBUG or SHOP_DEMO):
    SECRET_KEY = DEMO_SECRET_KEY
if not DEBUG and not SHOP_DEMO and (
    len(SECRET_KEY) < 50 or SECRET_KEY == DEMO_SECRET_KEY or SECRET_KEY.startswith("django-insecure")
):
    raise ImproperlyConfigured(
        "SECRET_KEY is missing or weak. Set SECRET_KEY to 50+ random characters "
        "(python -c 'import secrets; print(secrets.token_urlsafe(50))'), "
        "or SHOP_DEMO=1 for a local demo, or DEBUG=1 for development."
    )

# The demo's "how this page reached you" panel in every page's footer (shop/panel.js); off in production.
SHOP_SERVING_PANEL = env.bool("SHOP_SERVING_PANEL", default=SHOP_DEMO)

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
# The stack serves on 127.0.0.1:6081; Django checks the Origin of unsafe requests against the Host.
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "csp",
    "pagecache",
    "shop",
]

# Kept short on purpose: every middleware runs on every request that is not a cached shared page
# (those stop at SharedPageMiddleware). Session, CSRF and auth are lazy, so a page that does not
# touch them pays little for them.
MIDDLEWARE = [
    # Security headers first, so that every answer carries them: also a 400 for a bad Host,
    # which the middleware below CommonMiddleware would never see.
    "django.middleware.security.SecurityMiddleware",
    # Fresh shared pages are answered here, with one cache read, before the layers below run;
    # their stored copies already carry the headers those layers add (pagecache/middleware.py).
    "pagecache.middleware.SharedPageMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Last, so it sees exceptions from the views: a lost database answers a styled 503.
    "shop.middleware.DatabaseUnavailableMiddleware",
]

# Django's login rules, except that the demo's public account opens only in the demo (shop/auth.py).
AUTHENTICATION_BACKENDS = ["shop.auth.StoreBackend"]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            # Only lazy processors: none of them reads the session unless a template uses it,
            # and the shared (cached) templates never use `user`, `messages` or `csrf_token`.
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                # SHOP_SERVING_PANEL for base.html: a setting only, never the session, so shared pages stay shared.
                "shop.context_processors.serving_panel",
            ],
        },
    },
]


# ------------------------------------------------------------------------------------------------
# Database
# ------------------------------------------------------------------------------------------------

# https://django-environ.readthedocs.io/en/latest/types.html#environ-env-db-url
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# Reuse connections across requests (seconds) and check them before reuse, so a restarted
# database costs one failed check, not one failed request.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

# How long (seconds) a request waits for a lock another transaction holds before it gives up and
# rolls back (a 503 that changed nothing). The innermost layer gives up first: database 5 s, then
# uWSGI's harakiri (8 s, deploy/uwsgi/shop.ini), Nginx (9 s, deploy/nginx/shop.conf), Varnish
# (10 s, deploy/varnish/default.vcl). An outer layer that gave up first would answer "try again"
# for a change that then commits; tests/test_timeouts.py keeps the order.
DATABASE_LOCK_WAIT_SECONDS = 5

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # Take the write lock at BEGIN, so two writers queue instead of one failing with
        # "database is locked" when it upgrades a read lock.
        "transaction_mode": "IMMEDIATE",
        "timeout": DATABASE_LOCK_WAIT_SECONDS,
        # WAL lets readers go on while one writer writes (several uWSGI workers, one file).
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests use a file, not Django's default in-memory database: threads and live servers then
    # get connections of their own, so the concurrency tests see real races.
    # One file per test run (by PID), so two runs on one machine never share it.
    DATABASES["default"]["TEST"] = {"NAME": str(Path(tempfile.gettempdir()) / f"shop-test-{os.getpid()}.sqlite3")}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.mysql":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "charset": "utf8mb4",
            # Refuse bad data instead of silently truncating it; wait for a row lock as long as
            # DATABASE_LOCK_WAIT_SECONDS.
            "init_command": "SET sql_mode='STRICT_TRANS_TABLES', "
            f"innodb_lock_wait_timeout={DATABASE_LOCK_WAIT_SECONDS}",
        }
    )
    DATABASES["default"]["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}

# A read replica (MariaDB/MySQL replication), optional: shared catalog pages read from it while
# it is healthy; the cart, the admin and all writes use the primary (see shop/replicas.py).
if env.str("DATABASE_REPLICA_URL", default=""):
    DATABASES["replica"] = env.db("DATABASE_REPLICA_URL")
    DATABASES["replica"].update(
        CONN_MAX_AGE=DATABASES["default"]["CONN_MAX_AGE"],
        CONN_HEALTH_CHECKS=True,
        OPTIONS=dict(DATABASES["default"].get("OPTIONS", {}), connect_timeout=2),
        # Tests read the primary's test database through this alias rather than a copy.
        TEST={"MIRROR": "default"},
    )
    DATABASE_ROUTERS = ["shop.replicas.ReplicaRouter"]
# How often (seconds) a process re-checks the replica, and the lag (seconds) it tolerates.
REPLICA_CHECK_SECONDS = env.float("REPLICA_CHECK_SECONDS", default=5.0)
REPLICA_MAX_LAG_SECONDS = env.int("REPLICA_MAX_LAG_SECONDS", default=5)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


# ------------------------------------------------------------------------------------------------
# Cache (https://docs.djangoproject.com/en/5.2/topics/cache/)
# ------------------------------------------------------------------------------------------------

CACHE_TABLE = "shop_cache"
CACHES = {"default": env.cache("CACHE_URL", default=f"dbcache://{CACHE_TABLE}")}
# django-environ leaves `?key_prefix=` and `?version=` of a redis:// URL in lower case, where
# Django never reads them: two sites sharing one Redis database would serve each other's pages.
for option in ("key_prefix", "version"):
    if option in CACHES["default"]:
        CACHES["default"][option.upper()] = CACHES["default"].pop(option)
CACHES["default"].setdefault("KEY_PREFIX", "shop")
# Django's backends with less work per request: a leaner read of the same table, one redis-py
# client reused, memcached connections kept between requests (pagecache/backends.py).
LEANER_BACKENDS = {
    "django.core.cache.backends.db.DatabaseCache": "pagecache.backends.DatabaseCache",
    "django.core.cache.backends.redis.RedisCache": "pagecache.backends.RedisCache",
    "django.core.cache.backends.memcached.PyMemcacheCache": "pagecache.backends.PyMemcacheCache",
}
CACHES["default"]["BACKEND"] = LEANER_BACKENDS.get(CACHES["default"]["BACKEND"], CACHES["default"]["BACKEND"])
if CACHES["default"]["BACKEND"] == "pagecache.backends.DatabaseCache":
    CACHES["default"]["OPTIONS"] = {
        # The default of 300 entries thrashes on a real catalog: each cached URL takes two
        # entries (identity and gzip). 200,000 rows of ~10 KB is about 2 GB of table.
        "MAX_ENTRIES": env.int("CACHE_MAX_ENTRIES", default=200_000),
        # When full, drop 1/10 of the entries (the default 1/3 throws away too much at once).
        "CULL_FREQUENCY": 10,
    }

# The page cache (pagecache/conf.py has every setting, its default and its meaning). The TTL of
# every shared page, in Django and Varnish: changes are purged at once, so this only bounds what
# a purge does not reach; 60 s turns any traffic into one render a minute per page.
SHARED_PAGE_SECONDS = env.int("SHARED_PAGE_SECONDS", default=60)
BROWSER_CACHE_SECONDS = env.int("BROWSER_CACHE_SECONDS", default=10)
STALE_CACHE_SECONDS = env.int("STALE_CACHE_SECONDS", default=30)
NOT_FOUND_CACHE_SECONDS = env.int("NOT_FOUND_CACHE_SECONDS", default=10)
# Where Django sends BANs when the catalog changes: one or more Varnish URLs, comma-separated.
VARNISH_URL = env.list("VARNISH_URL", default=[])
VARNISH_PURGE_TIMEOUT = env.float("VARNISH_PURGE_TIMEOUT", default=2.0)
# Shared pages read the catalog from the replica while it is healthy (shop/replicas.py).
PAGECACHE_RENDER = "shop.replicas.render_from_replica"
# Sample pages for `manage.py cache_audit` (shared patterns with a slug); seed_demo makes them by default.
PAGECACHE_AUDIT_PATHS = ["/categories/kitchen/", "/products/simple-steel-jar-moss-1/", "/search/?q=mug"]


# ------------------------------------------------------------------------------------------------
# Sessions, cart, CSRF
# ------------------------------------------------------------------------------------------------

# Sessions (and so carts) live in the database, never only in a cache that may be flushed.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
# 2 weeks; `clearcarts` removes carts older than this. From the environment so tests can use seconds.
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=60 * 60 * 24 * 14)
# How long (seconds) the outcome of a cart write sent with an Idempotency-Key answers its retries
# (shop/idempotency.py); `clearcarts` removes older ones.
IDEMPOTENCY_KEY_SECONDS = env.int("IDEMPOTENCY_KEY_SECONDS", default=60 * 60 * 24)  # 1 day
# Largest quantity of one product in one cart line.
CART_MAX_QUANTITY = env.int("CART_MAX_QUANTITY", default=99)
# The JavaScript reads the token from the cookie (X-CSRFToken), so it must not be HttpOnly.
CSRF_COOKIE_HTTPONLY = False
CSRF_FAILURE_VIEW = "pagecache.csrf.csrf_failure"  # JSON under /api/, the 403 page elsewhere
# How long (seconds) the cart badge may trust its hint cookie before one check (pagecache/hint.py).
PAGECACHE_HINT_REFRESH_SECONDS = env.int("PAGECACHE_HINT_REFRESH_SECONDS", default=600)


# ------------------------------------------------------------------------------------------------
# Security (https://docs.djangoproject.com/en/5.2/howto/deployment/checklist/)
# ------------------------------------------------------------------------------------------------

# Only the store's own files may run or style a page: no inline script or style anywhere (cart.js
# and store.css are files), no plugins, no framing. Nginx sends the same policy with static
# files and its own error pages (deploy/nginx/shop.conf). https://django-csp.readthedocs.io/
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# HTTPS=1 when TLS terminates in front of Varnish (see the README's deploy guide): the terminator
# connects to Varnish's listener named "tls", Varnish then sets X-Forwarded-Proto: https itself
# (never taken from the client; deploy/varnish/default.vcl), and cookies become Secure.
HTTPS = env.bool("HTTPS", default=False)
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # Varnish probes /healthz over plain HTTP on loopback: a 301 there would mark Django sick.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)  # 1 year
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True


# ------------------------------------------------------------------------------------------------
# Static and media files
# ------------------------------------------------------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static_src"]
MEDIA_URL = "/media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Hashed names (cart.3f2a9c1b7d4e.js), so Nginx can tell browsers to keep them forever.
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
}


# ------------------------------------------------------------------------------------------------
# Internationalisation and logging
# ------------------------------------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "shop": {"handlers": ["console"], "level": env.str("SHOP_LOG_LEVEL", default="INFO"), "propagate": False},
        "pagecache": {"handlers": ["console"], "level": env.str("SHOP_LOG_LEVEL", default="INFO"), "propagate": False},
    },
}
