"""Every layer gives up after the one inside it, so a request is ended and rolled back inside first.

If an outer layer gave up first, a visitor would hear "try again" (Varnish's 503) for a change
that the inner layers then committed, and a retry would apply it twice.
"""

import re
from pathlib import Path

from django.conf import settings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def _seconds(path, pattern):
    return [int(value) for value in re.findall(pattern, (DEPLOY / path).read_text(), re.MULTILINE)]


def test_each_layer_gives_up_after_the_one_inside_it():
    database = settings.DATABASE_LOCK_WAIT_SECONDS
    [harakiri] = _seconds("uwsgi/shop.ini", r"^harakiri = (\d+)$")
    nginx = _seconds("nginx/shop.conf", r"^\s*uwsgi_(?:read|send)_timeout (\d+)s;")
    varnish = _seconds("varnish/default.vcl", r"\.first_byte_timeout = (\d+)s;")
    varnish += _seconds("varnish/cluster.vcl", r"\.first_byte_timeout = (\d+)s;")
    assert database < harakiri < min(nginx) <= max(nginx) < min(varnish), (database, harakiri, nginx, varnish)


def test_the_database_waits_for_a_lock_as_long_as_the_setting_says():
    options = settings.DATABASES["default"]["OPTIONS"]
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        assert options["timeout"] == settings.DATABASE_LOCK_WAIT_SECONDS
    else:
        assert f"innodb_lock_wait_timeout={settings.DATABASE_LOCK_WAIT_SECONDS}" in options["init_command"]
