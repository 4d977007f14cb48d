"""The benchmark's variants of the seed's way stay in bench/: the store never serves or runs them.

bench/variants.py mounts the seed's code (`@cache_page`, a session-reading header), the half-way
variant and Django's per-site cache, for `make bench` only. Nothing the store ships may reach them:
no URL of config/urls.py, no middleware of config/settings.py, no import from the store's code.
"""

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.http import Http404
from django.urls import Resolver404, URLPattern, URLResolver, get_resolver, resolve

from bench import app, variants
from bench import urls as bench_urls

ROOT = Path(__file__).resolve().parent.parent
PER_SITE_CACHE = ("django.middleware.cache.UpdateCacheMiddleware", "django.middleware.cache.FetchFromCacheMiddleware")
BENCH_VIEWS = [app.bare, app.page_copy, app.page_from_cache, app.uncached_product, variants.seed_product,
               variants.seed_render, variants.halfway_product, variants.halfway_render]


def _callbacks(patterns):
    """Yield every view an URLconf's patterns route to, through included URLconfs too."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _callbacks(pattern.url_patterns)
        elif isinstance(pattern, URLPattern):
            yield pattern.callback


def _bench_only_paths():
    """Return a concrete path for each URL pattern bench/urls.py adds to the store's."""
    store = {str(p.pattern) for p in get_resolver("config.urls").url_patterns}
    added = [str(p.pattern) for p in bench_urls.urlpatterns if str(p.pattern) not in store]
    return ["/" + pattern.replace("<slug:slug>", "some-product").replace("<str:alias>", "locmem") for pattern in added]


def test_the_bench_adds_its_variants_urls():
    assert "/bench/seed/products/some-product/" in _bench_only_paths()
    assert "/bench/site/products/some-product/" in _bench_only_paths()


def test_no_url_of_the_store_routes_to_a_bench_view():
    shipped = list(_callbacks(get_resolver("config.urls").url_patterns))
    assert shipped
    assert not [view for view in shipped if getattr(view, "__module__", "").startswith("bench")]
    assert not [view for view in shipped if any(view is bench_view for bench_view in BENCH_VIEWS)]


@pytest.mark.parametrize("path", _bench_only_paths())
def test_no_bench_path_resolves_in_the_store(path):
    with pytest.raises(Resolver404):
        resolve(path, urlconf="config.urls")


def test_the_shipped_settings_have_no_per_site_cache_and_no_bench():
    shipped = importlib.import_module("config.settings")
    for middleware in (shipped.MIDDLEWARE, settings.MIDDLEWARE):
        assert not set(PER_SITE_CACHE) & set(middleware)
        assert not [name for name in middleware if name.startswith("bench")]
    assert shipped.ROOT_URLCONF == "config.urls"
    assert "bench" not in shipped.INSTALLED_APPS
    assert not [d for t in shipped.TEMPLATES for d in t["DIRS"] if "bench" in str(d)]
    assert not [p for t in shipped.TEMPLATES for p in t["OPTIONS"].get("context_processors", ())
                if p.startswith("bench")]


def test_no_module_of_the_store_imports_the_bench():
    for folder in ("config", "shop", "pagecache"):
        for source in (ROOT / folder).rglob("*.py"):
            text = source.read_text()
            assert "import bench" not in text and "from bench" not in text, source


def _bench_settings(**env):
    """Import bench.settings in a process of its own with `env`; return what it decided."""
    code = ("import json, bench.settings as s; "
            "print(json.dumps({'urls': s.ROOT_URLCONF, 'middleware': s.MIDDLEWARE, 'caches': s.CACHES}))")
    answer = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "SHOP_DEMO": "1", **env})
    assert answer.returncode == 0, answer.stderr
    return json.loads(answer.stdout.splitlines()[-1])


@pytest.mark.parametrize("variant", ["seed", "halfway", "site"])
def test_the_variants_live_in_the_bench_settings_module_only(variant):
    bench = _bench_settings(BENCH_VARIANT=variant)
    assert bench["urls"] == "bench.urls"
    if variant == "site":
        assert (bench["middleware"][0], bench["middleware"][-1]) == PER_SITE_CACHE
        assert "pagecache.middleware.SharedPageMiddleware" not in bench["middleware"]
    else:
        assert "django.contrib.sessions.middleware.SessionMiddleware" in bench["middleware"]
        assert "pagecache.middleware.SharedPageMiddleware" not in bench["middleware"]
    # The store's own settings, read the same way, are untouched by any variant.
    assert not set(PER_SITE_CACHE) & set(importlib.import_module("config.settings").MIDDLEWARE)


def test_the_floor_reads_the_page_through_the_stores_backend_classes():
    bench = _bench_settings(BENCH_NO_MIDDLEWARE="1", BENCH_CACHE_PREFIX="b1",
                            BENCH_FLOOR_CACHES="db=dbcache://shop_cache,redis=redis://127.0.0.1:6379/13,locmem=locmem://")
    assert bench["middleware"] == []
    caches = bench["caches"]
    assert caches["db"]["BACKEND"] == "pagecache.backends.DatabaseCache"
    assert caches["redis"]["BACKEND"] == "pagecache.backends.RedisCache"
    assert caches["locmem"]["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"
    assert {caches[alias]["KEY_PREFIX"] for alias in ("db", "redis", "locmem")} == {"b1-floor"}
    assert "redis" not in importlib.import_module("config.settings").CACHES


def test_the_floor_answers_the_page_copy_from_a_cache(tmp_path, monkeypatch, rf, settings):
    copy = tmp_path / "page-copy.json"
    copy.write_text(json.dumps({"body": "<!doctype html><p>page</p>", "headers": [["X-Frame-Options", "DENY"]]}))
    monkeypatch.setenv("BENCH_PAGE_COPY", str(copy))
    app._page_answer.cache_clear()
    settings.CACHES = {**settings.CACHES, "floorcopy": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    request = rf.get("/bench/floor/cache/floorcopy/")
    first, second = app.page_from_cache(request, "floorcopy"), app.page_from_cache(request, "floorcopy")
    assert first.content == second.content == b"<!doctype html><p>page</p>"
    assert second["X-Frame-Options"] == "DENY"
    assert second["Content-Length"] == str(len(second.content))
    assert app.page_copy(request).content == first.content
    with pytest.raises(Http404):
        app.page_from_cache(request, "no-such-alias")
    app._page_answer.cache_clear()
