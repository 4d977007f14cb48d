"""Static files (docs/design.md, point 5): collected with hashed names and served by Nginx, never Django.

That Nginx serves them even with uWSGI stopped is part of the outage test in test_stack_faults.py.
"""

import re
import uuid

import pytest

from tests.stack.fixtures import http_session, stylesheet_path, wait_until

pytestmark = pytest.mark.stack

IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.fixture(scope="module")
def stylesheet(stack):
    return stylesheet_path(stack)


def _access_log_line(stack, url):
    """Return the line Nginx logged for `url` (written once the request is done)."""
    pattern = re.compile(rf'"GET {re.escape(url)} HTTP/1\.1" .*')

    def logged():
        return pattern.search((stack.log_dir / "nginx-access.log").read_text())

    return wait_until(logged, 5, f"an access-log line for {url}", step=0.05).group(0)


@pytest.mark.parametrize("through", ["varnish", "nginx"])
def test_hashed_css_is_gzipped_and_cached_for_a_year(stack, stylesheet, through):
    base = stack.varnish_url if through == "varnish" else stack.nginx_url

    response = http_session().get(base + stylesheet, headers={"Accept-Encoding": "gzip"})

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/css"
    assert response.headers["Content-Encoding"] == "gzip"
    # Exactly one Cache-Control (requests joins repeated headers with ", ").
    assert response.headers["Cache-Control"] == IMMUTABLE
    assert "Accept-Encoding" in response.headers["Vary"]
    assert "Set-Cookie" not in response.headers
    assert b".site-header" in response.content  # decoded: the real stylesheet


def test_static_files_never_reach_uwsgi(stack, stylesheet):
    http = http_session()
    # A query string of its own makes each request's log line unique; Nginx ignores it for files.
    tag = f"?request={uuid.uuid4().hex}"
    css, missing, django = stylesheet + tag, "/static/shop/missing.0123456789ab.css" + tag, "/api/cart/" + tag

    assert http.get(stack.nginx_url + css).status_code == 200
    assert http.get(stack.nginx_url + missing).status_code == 404
    assert http.get(stack.nginx_url + django).status_code == 200

    # urt is $upstream_response_time: "-" when Nginx answered without asking uWSGI.
    assert _access_log_line(stack, css).endswith("urt=- uct=-")
    assert _access_log_line(stack, missing).endswith("urt=- uct=-")  # no fallback to Django
    assert re.search(r"urt=\d+\.\d+ uct=\d+\.\d+$", _access_log_line(stack, django))


@pytest.mark.parametrize("path", ["/static/shop/no-such-file.css", "/media/products/not-uploaded-yet.jpg"])
def test_a_missing_file_is_kept_by_the_edge_briefly_like_djangos_404s(stack, path):
    """Without a lifetime of its own, Nginx's 404 would stay in Varnish for its default TTL (2 min):
    a photo uploaded a moment later would stay missing that long."""
    for url in (stack.nginx_url + path, stack.url(path)):
        response = http_session().get(url)
        assert response.status_code == 404
        assert response.headers["Cache-Control"] == "public, max-age=0, s-maxage=10"
