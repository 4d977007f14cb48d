"""pagecache's system checks: each reports its misconfiguration, and the store's settings pass them all."""

import pytest
from django.core.checks import run_checks
from django.http import HttpResponse
from django.urls import path

from pagecache.checks import SESSION_LAYERS
from pagecache.decorators import private_page

SECURITY = "django.middleware.security.SecurityMiddleware"
SHARED = "pagecache.middleware.SharedPageMiddleware"


@private_page
def _private_view(request):
    return HttpResponse("private")


# A URLconf with no shared view, for the missing-middleware check (ROOT_URLCONF = this module).
urlpatterns = [path("private/", _private_view)]


def ids(databases=None):
    """Return the ids of what the checks report, pagecache's only."""
    return [message.id for message in run_checks(databases=databases) if message.id.startswith("pagecache.")]


def test_the_stores_settings_pass_every_check(db):
    assert ids(databases=["default"]) == []


def _without_shared(middleware):
    return [name for name in middleware if name != SHARED]


@pytest.mark.parametrize("layer", SESSION_LAYERS)
def test_shared_middleware_below_a_session_layer(settings, layer):
    assert "pagecache.E001" not in ids()
    others = _without_shared(settings.MIDDLEWARE)
    settings.MIDDLEWARE = [*others[: others.index(layer) + 1], SHARED, *others[others.index(layer) + 1 :]]
    assert "pagecache.E001" in ids()


@pytest.mark.parametrize("where", ["below another layer", "above SecurityMiddleware"])
def test_shared_middleware_not_right_after_security(settings, where):
    assert "pagecache.W001" not in ids()
    others = _without_shared(settings.MIDDLEWARE)
    if where == "above SecurityMiddleware":
        settings.MIDDLEWARE = [SHARED, *others]
    else:
        settings.MIDDLEWARE = [SECURITY, "django.middleware.clickjacking.XFrameOptionsMiddleware", SHARED, *others[1:]]
    assert "pagecache.W001" in ids()


def test_missing_middleware_is_an_info_only_when_a_view_is_shared(settings):
    assert "pagecache.I001" not in ids()
    settings.MIDDLEWARE = _without_shared(settings.MIDDLEWARE)
    assert "pagecache.I001" in ids()
    settings.ROOT_URLCONF = __name__
    assert "pagecache.I001" not in ids()


def test_missing_cache_table_is_reported_only_when_a_database_is_checked(db, settings):
    assert "pagecache.W002" not in ids(databases=["default"])
    settings.CACHES = {"default": {"BACKEND": "pagecache.backends.DatabaseCache", "LOCATION": "no_such_table"}}
    assert "pagecache.W002" in ids(databases=["default"])
    assert "pagecache.W002" not in ids()  # `manage.py check` without --database: no query


@pytest.mark.parametrize(
    "backend", ["django.core.cache.backends.locmem.LocMemCache", "pagecache.backends.DatabaseCache"]
)
def test_default_max_entries_is_too_small(settings, backend):
    assert "pagecache.W003" not in ids()
    settings.CACHES = {"default": {"BACKEND": backend, "LOCATION": "pagecache_checks"}}
    assert "pagecache.W003" in ids()  # Django's default, 300 entries
    settings.CACHES["default"]["OPTIONS"] = {"MAX_ENTRIES": 3000}
    settings.CACHES = dict(settings.CACHES)  # a new value, so the caches are rebuilt
    assert "pagecache.W003" not in ids()


def test_max_entries_of_a_cache_that_does_not_cull_is_not_checked(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    assert "pagecache.W003" not in ids()


def test_locmem_cache_outside_debug(settings):
    assert "pagecache.W004" not in ids()
    big = {"MAX_ENTRIES": 100_000}
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "OPTIONS": big}}
    settings.DEBUG = False
    assert "pagecache.W004" in ids()
    settings.DEBUG = True
    assert "pagecache.W004" not in ids()


@pytest.mark.parametrize(
    "name", ["SHARED_PAGE_SECONDS", "BROWSER_CACHE_SECONDS", "STALE_CACHE_SECONDS", "NOT_FOUND_CACHE_SECONDS"]
)
@pytest.mark.parametrize("value", ["60", -1, 1.5, True, None])
def test_seconds_settings_must_be_integers_of_zero_or_more(settings, name, value):
    assert "pagecache.E002" not in ids()
    setattr(settings, name, value)
    assert "pagecache.E002" in ids()


@pytest.mark.parametrize("value", ["127.0.0.1:6081", ["ftp://edge"], ["http://edge", "edge:6081"], 6081])
def test_varnish_urls_need_an_http_scheme(settings, value):
    settings.VARNISH_URL = "http://127.0.0.1:6081, https://edge.example"
    assert "pagecache.E003" not in ids()
    settings.VARNISH_URL = value
    assert "pagecache.E003" in ids()


@pytest.mark.parametrize("value", [0, -1, "2", None, True])
def test_varnish_purge_timeout_must_be_a_positive_number(settings, value):
    assert "pagecache.E004" not in ids()
    settings.VARNISH_PURGE_TIMEOUT = value
    assert "pagecache.E004" in ids()


@pytest.mark.parametrize(
    "value", ["shop.replicas.no_such_function", "no_such_module.render", "shop", "pagecache.conf.DEFAULTS"]
)
def test_render_hook_must_be_an_importable_callable(settings, value):
    assert "pagecache.E005" not in ids()
    settings.PAGECACHE_RENDER = value
    assert "pagecache.E005" in ids()


@pytest.mark.parametrize("name", ["PAGECACHE_AUDIT_PATHS", "PAGECACHE_JSON_PATHS"])
@pytest.mark.parametrize("value", ["/api/", ["api/"], None])
def test_path_lists_must_be_lists_of_paths(settings, name, value):
    assert "pagecache.E006" not in ids()
    setattr(settings, name, value)
    assert "pagecache.E006" in ids()


@pytest.mark.parametrize("name", ["CSRF_COOKIE_HTTPONLY", "CSRF_USE_SESSIONS"])
def test_csrf_token_the_script_cannot_read(settings, name):
    assert "pagecache.W005" not in ids()
    setattr(settings, name, True)
    assert "pagecache.W005" in ids()


def test_csrf_failure_view_other_than_the_kits(settings):
    assert "pagecache.I002" not in ids()
    settings.CSRF_FAILURE_VIEW = "django.views.csrf.csrf_failure"
    assert "pagecache.I002" in ids()
