"""What `manage.py cache_audit` finds for each URL: its cache class, and whether a shared cache may keep it.

Every URL pattern is listed with its view's class (`shared`, `private`, `health`) or `undeclared`;
Django's admin is `private (never_cache)`. Undeclared patterns are warnings, not failures: an
unclassified view is uncached, which is slow but safe.

Each shared URL (the pattern itself without parameters, else the samples from the command line or
PAGECACHE_AUDIT_PATHS) is requested in-process by three visitors (anonymous, with a session and a
CSRF cookie, logged-in staff), twice each on an empty cache: the first answer is the render, the
second must be a hit. A URL fails when an answer could not be stored and shared by Varnish.

Nothing is left behind: a throwaway in-memory cache, no edge to ban, and one transaction per
database rolled back at the end (the staff user, the sessions, whatever a GET wrote).
"""

import gzip
import logging
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from importlib import import_module
from urllib.parse import urlsplit

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import DatabaseError, connections, router, transaction
from django.middleware.csrf import CSRF_ALLOWED_CHARS, CSRF_SECRET_LENGTH
from django.test import Client, override_settings
from django.urls import Resolver404, URLResolver, get_resolver, resolve
from django.utils.crypto import get_random_string
from django.utils.regex_helper import normalize

from pagecache.conf import setting
from pagecache.decorators import SHARED

UNDECLARED = "undeclared"
NEVER_CACHE = "private (never_cache)"
ANONYMOUS, SESSION, STAFF = "anonymous", "session", "staff"


class AuditError(Exception):
    """The audit itself could not run (not a finding about a page)."""


@dataclass
class Pattern:
    route: str
    cache_class: str
    path: str | None = None  # what to request when the pattern takes no parameter


@dataclass
class Finding:
    route: str
    url: str
    reasons: dict = field(default_factory=dict)  # visitor -> [reason]

    @property
    def verdict(self):
        return "FAIL" if any(self.reasons.values()) else "ok"


@dataclass
class Report:
    patterns: list
    findings: list = field(default_factory=list)
    warnings: list = field(default_factory=list)

    @property
    def failures(self):
        return [finding for finding in self.findings if finding.verdict == "FAIL"]


def url_patterns(resolver=None, route="", regex="^"):
    """Return every pattern of the URLconf, includes flattened, each admin site as one entry."""
    patterns = []
    for entry in (resolver or get_resolver()).url_patterns:
        # Joined as Django joins them, so `ResolverMatch.route` finds the same string.
        entry_route = route + str(entry.pattern).removeprefix("^") if route else str(entry.pattern)
        entry_regex = regex + entry.pattern.regex.pattern.removeprefix("^")
        if not isinstance(entry, URLResolver):
            patterns.append(Pattern(entry_route, _class_of(entry.callback), _fixed_path(entry_regex)))
        elif entry.app_name == "admin":  # admin views are never_cache; theirs to classify, not ours
            patterns.append(Pattern(entry_route, NEVER_CACHE))
        else:
            patterns += url_patterns(entry, entry_route, entry_regex)
    return patterns


def _class_of(view):
    """Return the cache class a view declares."""
    return getattr(view, "cache_class", None) or UNDECLARED


def label(route):
    """Return a route as the report shows it: a path from the root, or a regex as written."""
    return route if route.startswith("^") else "/" + route


def _fixed_path(regex):
    """Return the one path a pattern matches when it takes no parameter, else None."""
    fixed = [template for template, params in normalize(regex) if not params]
    return "/" + fixed[0].replace("%%", "%") if fixed else None


def run_audit(samples=(), staff=None):
    """Audit every shared URL; `samples` are paths for patterns with parameters."""
    report = Report(url_patterns())
    report.warnings += [
        f"{label(p.route)}: undeclared (no cache class)" for p in report.patterns if p.cache_class == UNDECLARED
    ]
    targets = _targets(report, list(dict.fromkeys([*samples, *setting("PAGECACHE_AUDIT_PATHS")])))
    if not targets:
        return report
    with _isolated() as guard:
        visitors = _visitors(staff, report.warnings)
        for pattern, url in targets:
            report.findings.append(_audit_url(pattern.route, url, visitors, guard))
    return report


def _targets(report, samples):
    """Return (pattern, URL) pairs to request; warn about unsampled patterns and stray samples."""
    shared = {p.route: p for p in report.patterns if p.cache_class == SHARED}
    urls = {route: [p.path] if p.path else [] for route, p in shared.items()}
    for sample in samples:
        try:
            match = resolve(urlsplit(sample).path)
        except Resolver404:
            report.warnings.append(f"sample {sample}: matches no URL pattern")
            continue
        if match.route in shared:
            urls[match.route].append(sample)
        else:
            cache_class = NEVER_CACHE if "admin" in match.app_names else _class_of(match.func)
            report.warnings.append(f"sample {sample}: {label(match.route)} is {cache_class}, not shared")
    for route in shared:
        if not urls[route]:
            report.warnings.append(f"{label(route)}: shared but not sampled (see PAGECACHE_AUDIT_PATHS)")
    return [(shared[route], url) for route in shared for url in dict.fromkeys(urls[route])]


@contextmanager
def _isolated():
    """Run the requests on a fresh cache, with DEBUG off, no edge, and every database rolled back."""
    fresh = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": f"pagecache-audit-{uuid.uuid4()}"}
    overrides = override_settings(
        CACHES={**settings.CACHES, "default": fresh},
        DEBUG=False,  # the guard logs instead of raising, as in production
        VARNISH_URL=[],
        ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, "testserver"],  # the test client's Host
    )
    with overrides, _GuardReasons() as guard, _rolled_back():
        yield guard


@contextmanager
def _rolled_back():
    """Open a transaction (or savepoint) on every database and roll it back at the end, whatever happens."""
    with ExitStack() as stack:
        for alias in connections:
            stack.enter_context(transaction.atomic(using=alias))
        try:
            yield
        finally:
            for alias in connections:
                transaction.set_rollback(True, using=alias)


class _GuardReasons(logging.Handler):
    """Collect the reasons the visitor-state guard logs, off the console (the report names them)."""

    logger = logging.getLogger("pagecache.guard")

    def __enter__(self):
        self.reasons, self.saved = [], (self.logger.level, self.logger.propagate, self.logger.disabled)
        self.logger.addHandler(self)
        self.logger.setLevel(logging.ERROR)
        self.logger.propagate = self.logger.disabled = False
        return self

    def __exit__(self, *exc_info):
        self.logger.removeHandler(self)
        self.logger.setLevel(self.saved[0])
        self.logger.propagate, self.logger.disabled = self.saved[1:]

    def emit(self, record):
        self.reasons.extend(getattr(record, "pagecache_reasons", ()))


def _visitors(staff, warnings):
    """Return the cookies of each visitor: anonymous, with a session, logged-in staff."""
    csrf = {settings.CSRF_COOKIE_NAME: get_random_string(CSRF_SECRET_LENGTH, CSRF_ALLOWED_CHARS)}
    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session["pagecache_audit"] = True
    session.save()
    visitors = {ANONYMOUS: {}, SESSION: {settings.SESSION_COOKIE_NAME: session.session_key, **csrf}}
    if not apps.is_installed("django.contrib.auth"):
        warnings.append("no staff visitor: django.contrib.auth is not installed")
        return visitors
    client = Client()
    client.force_login(_staff_user(staff))
    visitors[STAFF] = {settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value, **csrf}
    return visitors


def _staff_user(username):
    """Return the staff user named on the command line, or a throwaway one (rolled back)."""
    user_model = get_user_model()
    if username:
        try:
            return user_model._default_manager.get_by_natural_key(username)
        except user_model.DoesNotExist:
            raise AuditError(f"no user named {username!r} (--staff)") from None
    user = user_model(**{user_model.USERNAME_FIELD: f"pagecache-audit-{uuid.uuid4().hex[:12]}"})
    user.is_staff = True
    user.set_unusable_password()
    try:
        with transaction.atomic(using=router.db_for_write(user_model)):
            user.save()
    except (DatabaseError, ValueError) as exc:
        raise AuditError(f"cannot create a throwaway staff user ({exc}); name one with --staff") from exc
    return user


def _audit_url(route, url, visitors, guard):
    """Request one URL as each visitor, twice on an empty cache, and say what stops sharing it."""
    finding, bodies = Finding(route, url), {}
    for name, cookies in visitors.items():
        client = Client(raise_request_exception=False)
        for cookie, value in cookies.items():
            client.cookies[cookie] = value
        cache.clear()
        guard.reasons = []
        first = _get(client, url)
        reasons = response_reasons(first, guard.reasons, body_of(first))
        if _get(client, url).get("X-Django-Cache") != "HIT":
            reasons.append("not served from the cache on the 2nd request")
        finding.reasons[name] = reasons
        bodies[name] = body_of(first)
    for name, body in bodies.items():
        if body != bodies[ANONYMOUS]:
            finding.reasons[name].append("different HTML for different visitors")
    return finding


def _get(client, url):
    """GET a URL in savepoints rolled back after it: a failed query spoils no later request."""
    with _rolled_back():
        return client.get(url)  # no Accept-Encoding: the identity copy, comparable as is


def body_of(response):
    """Return a response's body, joined if streamed and gunzipped if compressed."""
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return gzip.decompress(body) if response.get("Content-Encoding") == "gzip" else body


def response_reasons(response, touched, body):
    """Say why a shared cache could not keep this answer and share it (empty: it could)."""
    reasons = []
    if getattr(response, "exc_info", None):
        reasons.append(f"error: {response.exc_info[0].__name__}")
    elif response.status_code != 200:
        reasons.append(f"status {response.status_code}")
    if response.cookies:
        reasons.append(f"Set-Cookie ({', '.join(sorted(response.cookies))})")
    elif "cookie" in touched:
        reasons.append("Set-Cookie")
    vary = {part.strip().lower() for part in response.get("Vary", "").split(",")}
    reasons += [f"Vary: {name}" for name, token in (("Cookie", "cookie"), ("*", "*")) if token in vary]
    if "session" in touched:
        reasons.append("session read")
    if "csrf" in touched or b"csrfmiddlewaretoken" in body:
        reasons.append("CSRF token in the HTML")
    if "csp-nonce" in touched:
        reasons.append("CSP nonce")
    control = cache_control(response)
    declined = [name for name in ("private", "no-store", "no-cache") if name in control]
    if declined:
        reasons.append("/".join(declined))
    elif not _seconds(control.get("s-maxage")) and not ("public" in control and _seconds(control.get("max-age"))):
        reasons.append("no s-maxage")
    return reasons


def cache_control(response):
    """Return a response's Cache-Control directives as {name: value}, names in lower case."""
    parts = (part.strip().partition("=") for part in response.get("Cache-Control", "").split(","))
    return {name.lower(): value.strip('" ') for name, _, value in parts if name}


def _seconds(value):
    """Return a directive's number of seconds (0 if absent or unreadable)."""
    return int(value) if str(value).isdigit() else 0
