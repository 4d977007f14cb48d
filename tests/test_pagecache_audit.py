"""`manage.py cache_audit`: every pattern with its class, and each shared URL proven shareable, or why not."""

import json
import logging
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.http import HttpResponse
from django.middleware.csrf import get_token
from django.urls import include, path, re_path
from django.utils.text import slugify

import config.settings
import shop.views
from pagecache.audit import response_reasons
from pagecache.decorators import shared_page
from shop.management.commands import seed_demo
from shop.models import Category
from tests.factories import CategoryFactory, ProductFactory

SAMPLES = ("/products/blue-mug/", "/categories/kitchen/")


def _undeclared_view(request):
    return HttpResponse("no decorator")


@shared_page
def _about(request):
    return HttpResponse("about")


# A URLconf with the store under a prefix, a regex pattern and an undeclared view (ROOT_URLCONF = this module).
urlpatterns = [
    path("store/", include("config.urls")),
    re_path(r"^about/$", _about),
    path("plain/", _undeclared_view),
]


@pytest.fixture(autouse=True)
def no_samples_from_settings(settings):
    """The store's sample paths name the demo catalog, which these tests do not create."""
    settings.PAGECACHE_AUDIT_PATHS = []


@pytest.fixture
def catalog():
    kitchen = CategoryFactory(name="Kitchen", slug="kitchen")
    ProductFactory.create_batch(3, category=kitchen)
    return ProductFactory(name="Blue Mug", slug="blue-mug", category=kitchen, is_featured=True)


def audit(*args):
    """Run the command; return its output (a failure raises CommandError)."""
    out = StringIO()
    call_command("cache_audit", *args, stdout=out)
    return out.getvalue()


def _rows(output):
    """Return {(pattern, url): (class, verdict)} from the command's table."""
    rows = {}
    for line in output.splitlines()[1:]:
        cells = line.split("  ")
        cells = [cell.strip() for cell in cells if cell.strip()]
        if not line.startswith(" ") and len(cells) == 4:
            rows[(cells[0], cells[2])] = (cells[1], cells[3])
    return rows


class _Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


def _render_with(monkeypatch, change):
    """Make the store's views render through `change(request, response)`."""
    real_render = shop.views.render

    def render(request, *args, **kwargs):
        response = real_render(request, *args, **kwargs)
        return change(request, response) or response

    monkeypatch.setattr(shop.views, "render", render)


@pytest.mark.django_db
def test_the_store_passes_and_every_pattern_is_listed_with_its_class(catalog):
    rows = _rows(audit(*SAMPLES))
    assert rows == {
        ("/", "/"): ("shared", "ok"),
        ("/categories/<slug:slug>/", "/categories/kitchen/"): ("shared", "ok"),
        ("/products/<slug:slug>/", "/products/blue-mug/"): ("shared", "ok"),
        ("/search/", "/search/"): ("shared", "ok"),
        ("/cart/", "-"): ("private", "-"),
        ("/api/cart/", "-"): ("private", "-"),
        ("/api/cart/items/", "-"): ("private", "-"),
        ("/api/cart/items/<slug:slug>/", "-"): ("private", "-"),
        ("/healthz", "-"): ("health", "-"),
        ("/admin/", "-"): ("private (never_cache)", "-"),
    }


@pytest.mark.django_db
def test_samples_come_from_the_setting_too(catalog, settings):
    settings.PAGECACHE_AUDIT_PATHS = ["/products/blue-mug/", "/search/?q=mug"]
    output = audit()
    assert ("/search/", "/search/?q=mug") in _rows(output)
    assert _rows(output)[("/categories/<slug:slug>/", "-")] == ("shared", "not sampled")
    assert "/categories/<slug:slug>/: shared but not sampled" in output


def test_the_stores_sample_paths_are_made_by_seed_demo():
    """The setting names pages the demo catalog always has (seed_demo's first product, a category)."""
    categories = [Category(name=name, slug=slugify(name)) for name in seed_demo.CATEGORIES]
    images = {noun: ["x.png"] for nouns, _ in seed_demo.CATEGORIES.values() for noun in nouns}
    first = seed_demo._product(42, 0, categories, images)  # the default --seed
    assert f"/products/{first.slug}/" in config.settings.PAGECACHE_AUDIT_PATHS
    assert f"/categories/{first.category.slug}/" in config.settings.PAGECACHE_AUDIT_PATHS


@pytest.mark.django_db
def test_undeclared_patterns_and_stray_samples_are_warnings_not_failures(catalog, settings):
    settings.ROOT_URLCONF = __name__
    output = audit("/store/products/blue-mug/", "/store/cart/", "/nowhere/")
    rows = _rows(output)
    assert rows[("/store/products/<slug:slug>/", "/store/products/blue-mug/")] == ("shared", "ok")
    assert rows[("^about/$", "/about/")] == ("shared", "ok")  # a regex pattern without parameters
    assert rows[("/plain/", "-")] == ("undeclared", "-")
    assert "/plain/: undeclared" in output
    assert "sample /store/cart/: /store/cart/ is private, not shared" in output
    assert "sample /nowhere/: matches no URL pattern" in output


@pytest.mark.django_db
def test_a_shared_page_with_a_csrf_token_fails(catalog, monkeypatch):
    def add_token(request, response):
        response.content += f'<input name="csrfmiddlewaretoken" value="{get_token(request)}">'.encode()

    _render_with(monkeypatch, add_token)
    with pytest.raises(CommandError, match="/products/blue-mug/") as failure:
        audit(*SAMPLES)
    assert "CSRF token in the HTML" in str(failure.value)
    assert "Set-Cookie (csrftoken)" in str(failure.value)  # the anonymous visitor is handed one


@pytest.mark.django_db
def test_a_shared_page_that_reads_the_session_fails(catalog, monkeypatch):
    _render_with(monkeypatch, lambda request, response: request.session.get("cart"))
    out, logged = StringIO(), _Records()
    logging.getLogger("pagecache").addHandler(logged)
    try:
        with pytest.raises(CommandError, match="session read"):
            call_command("cache_audit", *SAMPLES, stdout=out)
    finally:
        logging.getLogger("pagecache").removeHandler(logged)
    rows = _rows(out.getvalue())
    assert rows[("/products/<slug:slug>/", "/products/blue-mug/")] == ("shared", "FAIL")
    assert "Vary: Cookie" in out.getvalue()  # the session middleware says so once it was read
    assert logged.records == []  # the guard's errors were the audit's to report, not the log's


@pytest.mark.django_db
def test_a_shared_page_that_sets_a_cookie_fails_naming_it(catalog, monkeypatch):
    _render_with(monkeypatch, lambda request, response: response.set_cookie("tracking", "1"))
    with pytest.raises(CommandError, match=r"Set-Cookie \(tracking\)"):
        audit(*SAMPLES)


@pytest.mark.django_db
def test_a_shared_page_that_differs_per_visitor_fails(catalog, monkeypatch):
    def greet(request, response):
        if "sessionid" in request.COOKIES:  # no guard sees this: only comparing the pages does
            response.content += b"<p>Welcome back</p>"

    _render_with(monkeypatch, greet)
    with pytest.raises(CommandError, match="different HTML for different visitors"):
        audit(*SAMPLES)


@pytest.mark.django_db
def test_a_view_error_is_a_reason_not_a_crash(catalog, monkeypatch):
    def fail(request, response):
        if response.status_code == 200:  # the 500 page itself renders
            raise RuntimeError("template bug")

    _render_with(monkeypatch, fail)
    with pytest.raises(CommandError, match="error: RuntimeError"):
        audit(*SAMPLES)


@pytest.mark.parametrize(
    "headers, reason",
    [
        ({"Vary": "Accept-Encoding, Cookie"}, "Vary: Cookie"),
        ({"Cache-Control": "max-age=60"}, "no s-maxage"),
        ({"Cache-Control": "public, s-maxage=0"}, "no s-maxage"),
        ({"Cache-Control": "private, max-age=60"}, "private"),
        ({"Cache-Control": "no-cache, no-store, private"}, "private/no-store/no-cache"),
    ],
)
def test_headers_that_stop_a_shared_cache(headers, reason):
    response = HttpResponse("page", headers=headers)
    assert reason in response_reasons(response, [], response.content)


def test_a_shareable_answer_has_no_reason():
    response = HttpResponse("page", headers={"Cache-Control": "public, max-age=10, s-maxage=60"})
    assert response_reasons(response, [], response.content) == []


@pytest.mark.django_db(transaction=True)
def test_the_audit_leaves_users_sessions_and_the_cache_as_they_were(catalog, admin_user):
    cache.set("kept", 1)
    before = get_user_model().objects.count(), Session.objects.count()
    audit(*SAMPLES)
    audit(*SAMPLES, "--staff", admin_user.username)
    assert (get_user_model().objects.count(), Session.objects.count()) == before
    assert cache.get("kept") == 1  # the project's cache was neither cleared nor used
    assert cache.get_many([f"page:{n}" for n in range(3)]) == {}


@pytest.mark.django_db
def test_an_unknown_staff_user_is_an_error(catalog):
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        audit(*SAMPLES, "--staff", "nobody")


@pytest.mark.django_db
def test_json_for_machines(catalog):
    report = json.loads(audit(*SAMPLES, "--json"))
    verdicts = {finding["url"]: finding["verdict"] for finding in report["urls"]}
    assert verdicts == {"/": "ok", "/categories/kitchen/": "ok", "/products/blue-mug/": "ok", "/search/": "ok"}
    assert {"route": "healthz", "cache_class": "health", "path": "/healthz"} in report["patterns"]
    assert set(report["urls"][0]["reasons"]) == {"anonymous", "session", "staff"}
