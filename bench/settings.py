"""Settings for the servers the benchmark starts: the store's own, plus three bench-only things.

    ROOT_URLCONF      bench.urls: the store's URLs unchanged, then /bench/... rows that the store
                      has no URL for (a trivial view, the product view without its cache)
    WhiteNoise        serves STATIC_ROOT at /django-static/, so "Django serves the CSS" can be
                      measured through the same Nginx as "Nginx serves the CSS" (/static/)
    BENCH_RENDER_LOG  when set, a context processor appends the path of every template render to
                      this file: the spike's render counter (one short append per render, none
                      per cache hit)

Everything else, the middleware the hits run through included, is config.settings as shipped.
"""

import os

from config.settings import *  # noqa: F403
from config.settings import MIDDLEWARE, TEMPLATES, env

ROOT_URLCONF = "bench.urls"

# First, as WhiteNoise asks: a request for another prefix costs it one dict lookup.
# https://whitenoise.readthedocs.io/en/stable/django.html
MIDDLEWARE = [MIDDLEWARE[0], "whitenoise.middleware.WhiteNoiseMiddleware", *MIDDLEWARE[1:]]
WHITENOISE_STATIC_PREFIX = "/django-static/"

if os.environ.get("BENCH_RENDER_LOG"):
    TEMPLATES[0]["OPTIONS"]["context_processors"].append("bench.app.count_render")

# Runs of the benchmark share a Redis or memcached with other users of this machine: a prefix of
# their own keeps their pages apart (django-environ drops `?key_prefix=` for redis:// URLs).
if env.str("BENCH_CACHE_PREFIX", default=""):
    CACHES["default"]["KEY_PREFIX"] = env.str("BENCH_CACHE_PREFIX")  # noqa: F405

# The framework's floor: with BENCH_NO_MIDDLEWARE=1 a stack runs no middleware at all, so its
# /bench/bare/ row is the least any Django-served answer can cost on this machine.
if env.bool("BENCH_NO_MIDDLEWARE", default=False):
    MIDDLEWARE = []
