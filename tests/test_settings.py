"""Settings come from the environment: each is read in a fresh interpreter with its own env."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REAL_KEY = "k" * 20 + "-real-production-key-with-enough-entropy-0123456789"


def _run(code, **env):
    clean = {k: v for k, v in os.environ.items() if k not in ("SHOP_DEMO", "SECRET_KEY", "DATABASE_URL", "CACHE_URL")}
    clean.update(env, DJANGO_SETTINGS_MODULE="config.settings")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60)


def _settings(names, **env):
    code = (
        "import json, django; django.setup(); from django.conf import settings as s;"
        f"print(json.dumps({{n: getattr(s, n) for n in {names!r}}}, default=str))"
    )
    result = _run(code, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_production_refuses_to_start_without_a_secret_key():
    result = _run("import django; django.setup()")
    assert result.returncode != 0
    assert "SECRET_KEY is missing or weak" in result.stderr


def test_production_refuses_the_demo_key():
    result = _run(
        "import django; django.setup()",
        SECRET_KEY="demo-only-insecure-key-never-use-in-production-7c1f0e2b9a4d4f3e8b6a5c2d1e0f9a8b",
    )
    assert result.returncode != 0


def test_defaults_are_sqlite_and_the_database_cache_with_debug_off():
    values = _settings(["DEBUG", "DATABASES", "CACHES", "ALLOWED_HOSTS"], SHOP_DEMO="1")
    assert values["DEBUG"] is False
    assert values["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert values["DATABASES"]["default"]["CONN_HEALTH_CHECKS"] is True
    cache = values["CACHES"]["default"]
    assert cache["BACKEND"] == "pagecache.backends.DatabaseCache"  # Django's, with a leaner read
    assert cache["LOCATION"] == "shop_cache"
    assert cache["OPTIONS"]["MAX_ENTRIES"] >= 100_000
    assert values["ALLOWED_HOSTS"] == ["127.0.0.1", "localhost"]


def test_mysql_database_url_uses_mysqlclient_with_persistent_checked_connections():
    values = _settings(
        ["DATABASES"], SECRET_KEY=REAL_KEY, DATABASE_URL="mysql://shop:pw@db.internal:3306/shop", CONN_MAX_AGE="300"
    )
    db = values["DATABASES"]["default"]
    assert db["ENGINE"] == "django.db.backends.mysql"
    assert (db["HOST"], db["PORT"], db["NAME"], db["USER"]) == ("db.internal", 3306, "shop", "shop")
    assert db["CONN_MAX_AGE"] == 300
    assert db["CONN_HEALTH_CHECKS"] is True
    assert db["OPTIONS"]["charset"] == "utf8mb4"


def test_cache_url_selects_redis_memcached_or_locmem():
    def backend(url):
        return _settings(["CACHES"], SHOP_DEMO="1", CACHE_URL=url)["CACHES"]["default"]["BACKEND"]

    assert backend("redis://127.0.0.1:6379/1") == "pagecache.backends.RedisCache"
    assert backend("pymemcache://127.0.0.1:11211") == "pagecache.backends.PyMemcacheCache"
    assert backend("locmem://") == "django.core.cache.backends.locmem.LocMemCache"


def test_cache_key_prefix_in_the_url_is_honoured():
    cache = _settings(["CACHES"], SHOP_DEMO="1", CACHE_URL="redis://127.0.0.1:6379/1?key_prefix=site2")["CACHES"]
    assert cache["default"]["KEY_PREFIX"] == "site2"
    assert _settings(["CACHES"], SHOP_DEMO="1")["CACHES"]["default"]["KEY_PREFIX"] == "shop"


def test_allowed_hosts_and_ttls_come_from_the_environment():
    values = _settings(
        ["ALLOWED_HOSTS", "SHARED_PAGE_SECONDS", "VARNISH_URL"],
        SHOP_DEMO="1", ALLOWED_HOSTS="shop.example,www.shop.example", SHARED_PAGE_SECONDS="10",
        VARNISH_URL="http://127.0.0.1:6081,http://127.0.0.2:6081",
    )
    assert values["ALLOWED_HOSTS"] == ["shop.example", "www.shop.example"]
    assert values["SHARED_PAGE_SECONDS"] == 10
    assert values["VARNISH_URL"] == ["http://127.0.0.1:6081", "http://127.0.0.2:6081"]


def _check_deploy(**env):
    return _run(
        "import sys; from django.core.management import execute_from_command_line;"
        "execute_from_command_line(['manage.py', 'check', '--deploy'])",
        SECRET_KEY=REAL_KEY, **env,
    )


def test_check_deploy_warns_only_about_https_without_tls():
    result = _check_deploy()
    warnings = set(re.findall(r"\((security\.W\d+)\)", result.stderr))
    assert warnings == {"security.W004", "security.W008", "security.W012", "security.W016"}, result.stderr


def test_check_deploy_is_clean_behind_tls():
    result = _check_deploy(HTTPS="1")
    assert result.returncode == 0
    assert "no issues" in (result.stdout + result.stderr), result.stderr
