"""Settings for the servers the benchmark starts: the store's own, plus bench-only things.

    ROOT_URLCONF      bench.urls: the store's URLs unchanged, then /bench/... rows that the store
                      has no URL for (a trivial view, the product view without its cache, the
                      seed's variants of bench/variants.py)
    WhiteNoise        serves STATIC_ROOT at /django-static/, so "Django serves the CSS" can be
                      measured through the same Nginx as "Nginx serves the CSS" (/static/); it sits
                      below SharedPageMiddleware, so hits run through the shipped middleware only
    BENCH_RENDER_LOG  when set, a context processor appends the path of every template render to
                      this file: the render counter of the spike and of the visitors (one short
                      append per render, none per cache hit)
    BENCH_VARIANT     seed or halfway: `django-admin startproject`'s middleware instead of the
                      store's; site: the store's with Django's per-site cache around it and without
                      pagecache's middleware (bench/variants.py)
    BENCH_SEED_SECONDS  the lifetime of the variants' caches (`@cache_page`, the per-site cache)
    BENCH_FLOOR_CACHES  on the floor stack: a cache alias per backend under test, from which
                      /bench/floor/cache/<alias>/ reads the page with one get (bench/app.py)

Everything else, the middleware the hits run through included, is config.settings as shipped.
"""

import ast
import copy
import os
import re
from pathlib import Path

import django

from config.settings import *  # noqa: F403
from config.settings import LEANER_BACKENDS, MIDDLEWARE, TEMPLATES, env

ROOT_URLCONF = "bench.urls"

# A copy: config.settings' own lists stay as shipped in a process that imports both.
TEMPLATES = copy.deepcopy(TEMPLATES)
# The variants' own templates (bench/templates/bench/), found before nothing of the store's.
TEMPLATES[0]["DIRS"] = [*TEMPLATES[0]["DIRS"], Path(__file__).resolve().parent / "templates"]

# Right below SharedPageMiddleware, so that the hits the bench measures run through the store's
# middleware as shipped and nothing else. WhiteNoise asks to be above everything but
# SecurityMiddleware; the one layer above it here answers a static path with a remembered lookup.
# https://whitenoise.readthedocs.io/en/stable/django.html
_below_shared_pages = MIDDLEWARE.index("pagecache.middleware.SharedPageMiddleware") + 1
MIDDLEWARE = [*MIDDLEWARE[:_below_shared_pages], "whitenoise.middleware.WhiteNoiseMiddleware",
              *MIDDLEWARE[_below_shared_pages:]]
WHITENOISE_STATIC_PREFIX = "/django-static/"

if os.environ.get("BENCH_RENDER_LOG"):
    TEMPLATES[0]["OPTIONS"]["context_processors"].append("bench.app.count_render")

# Runs of the benchmark share a Redis or memcached with other users of this machine: a prefix of
# their own keeps their pages apart (django-environ drops `?key_prefix=` for redis:// URLs).
if env.str("BENCH_CACHE_PREFIX", default=""):
    CACHES["default"]["KEY_PREFIX"] = env.str("BENCH_CACHE_PREFIX")  # noqa: F405

# The floor stack reads a copy of the page from each backend under test, with one get and nothing
# else (bench/app.py, page_from_cache): one alias per backend, the store's classes, from
# BENCH_FLOOR_CACHES="alias=URL,alias=URL".
for _alias, _url in (item.split("=", 1) for item in env.list("BENCH_FLOOR_CACHES", default=[])):
    CACHES[_alias] = env.cache_url_config(_url)  # noqa: F405
    CACHES[_alias]["BACKEND"] = LEANER_BACKENDS.get(CACHES[_alias]["BACKEND"], CACHES[_alias]["BACKEND"])  # noqa: F405
    CACHES[_alias]["KEY_PREFIX"] = f"{env.str('BENCH_CACHE_PREFIX', default='bench')}-floor"  # noqa: F405

# The seed's variants (bench/variants.py): each runs in a stack of its own.
UPDATE_CACHE = "django.middleware.cache.UpdateCacheMiddleware"
FETCH_FROM_CACHE = "django.middleware.cache.FetchFromCacheMiddleware"
SHARED_PAGE = "pagecache.middleware.SharedPageMiddleware"


def startproject_middleware():
    """Return the MIDDLEWARE that `django-admin startproject` writes, read from Django's own template."""
    template = Path(django.__file__).parent / "conf" / "project_template" / "project_name" / "settings.py-tpl"
    found = re.search(r"^MIDDLEWARE = (\[.*?\])", template.read_text(), re.MULTILINE | re.DOTALL)
    return ast.literal_eval(found.group(1))


def site_cache_middleware(store_middleware):
    """Return the store's middleware as Django's per-site cache wants it, without pagecache's."""
    # Django's documented order: Update first (last on the way out), Fetch last (the hit check).
    return [UPDATE_CACHE, *(m for m in store_middleware if m != SHARED_PAGE), FETCH_FROM_CACHE]


BENCH_SEED_SECONDS = env.int("BENCH_SEED_SECONDS", default=60 * 60)
BENCH_VARIANT = env.str("BENCH_VARIANT", default="")
if BENCH_VARIANT in ("seed", "halfway"):
    MIDDLEWARE = startproject_middleware()
elif BENCH_VARIANT == "site":
    MIDDLEWARE = site_cache_middleware(MIDDLEWARE)
    CACHE_MIDDLEWARE_SECONDS = BENCH_SEED_SECONDS
    CACHE_MIDDLEWARE_KEY_PREFIX = "site"
elif BENCH_VARIANT:
    raise ValueError(f"BENCH_VARIANT={BENCH_VARIANT!r}: seed, halfway or site")

# The framework's floor: with BENCH_NO_MIDDLEWARE=1 a stack runs no middleware at all, so its
# /bench/bare/ row is the least any Django-served answer can cost on this machine.
if env.bool("BENCH_NO_MIDDLEWARE", default=False):
    MIDDLEWARE = []
