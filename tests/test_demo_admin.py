"""The demo admin account: there in the demo, for editing the catalog only; never in production.

Production is proved in fresh interpreters with SHOP_DEMO unset and a real SECRET_KEY (settings
refuse to start otherwise), on a SQLite file of their own, as tests/test_settings.py does.
"""

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from shop.management.commands.ensure_demo_admin import DEMO_PASSWORD, DEMO_USERNAME
from tests.factories import ProductFactory
from tests.test_settings import REAL_KEY

ROOT = Path(__file__).resolve().parent.parent


def _ensure(**options):
    out = StringIO()
    call_command("ensure_demo_admin", stdout=out, **options)
    return out.getvalue()


@pytest.mark.django_db
def test_the_demo_gets_the_account_and_its_login_once(settings):
    settings.SHOP_DEMO = True
    printed = _ensure(site="http://127.0.0.1:6081/")
    assert f"http://127.0.0.1:6081/admin/  user: {DEMO_USERNAME}  password: {DEMO_PASSWORD}" in printed
    _ensure()
    assert get_user_model().objects.filter(username=DEMO_USERNAME).count() == 1
    assert authenticate(username=DEMO_USERNAME, password=DEMO_PASSWORD) is not None


@pytest.mark.django_db
def test_the_demo_account_edits_the_catalog_and_nothing_else(settings):
    settings.SHOP_DEMO = True
    _ensure()
    product = ProductFactory()
    admin = Client()
    assert admin.login(username=DEMO_USERNAME, password=DEMO_PASSWORD)
    assert admin.get(f"/admin/shop/product/{product.pk}/change/").status_code == 200
    assert admin.get("/admin/shop/category/").status_code == 200
    assert admin.get("/admin/auth/user/").status_code == 403
    assert admin.get(f"/admin/shop/product/{product.pk}/delete/").status_code == 403
    assert not get_user_model().objects.get(username=DEMO_USERNAME).is_superuser


@pytest.mark.django_db
def test_without_shop_demo_the_command_refuses_and_shuts_a_leftover_account(settings):
    settings.SHOP_DEMO = True
    _ensure()
    settings.SHOP_DEMO = False
    with pytest.raises(CommandError, match="Refused"):
        _ensure()
    assert authenticate(username=DEMO_USERNAME, password=DEMO_PASSWORD) is None
    assert not Client().login(username=DEMO_USERNAME, password=DEMO_PASSWORD)


@pytest.mark.django_db
def test_someone_elses_account_called_demo_is_left_alone(settings):
    settings.SHOP_DEMO = False
    get_user_model().objects.create_user(DEMO_USERNAME, password="their-own-password-1")
    with pytest.raises(CommandError, match="No account made"):
        _ensure()
    assert authenticate(username=DEMO_USERNAME, password="their-own-password-1") is not None


# ------------------------------------------------------------------------------------------------
# Production: fresh interpreters without SHOP_DEMO
# ------------------------------------------------------------------------------------------------

LOGS_IN = (
    "from django.contrib.auth import authenticate;"
    f"print('logs in:', authenticate(username={DEMO_USERNAME!r}, password={DEMO_PASSWORD!r}) is not None)"
)


def _manage(database, *args, demo=False):
    """Run manage.py in a fresh interpreter: production (a real key, no SHOP_DEMO) unless `demo`."""
    env = {k: v for k, v in os.environ.items() if k not in ("SHOP_DEMO", "SECRET_KEY", "DATABASE_URL", "CACHE_URL")}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", DATABASE_URL=f"sqlite:///{database}")
    env.update({"SHOP_DEMO": "1"} if demo else {"SECRET_KEY": REAL_KEY})
    command = [sys.executable, "manage.py", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def production_database(tmp_path):
    database = tmp_path / "production.sqlite3"
    migrated = _manage(database, "migrate", "--noinput", "-v0")
    assert migrated.returncode == 0, migrated.stderr
    return database


def test_production_refuses_to_make_the_account(production_database):
    refused = _manage(production_database, "ensure_demo_admin")
    assert refused.returncode != 0
    assert "Refused: SHOP_DEMO is off" in refused.stderr
    assert DEMO_PASSWORD not in refused.stdout + refused.stderr
    assert "logs in: False" in _manage(production_database, "shell", "-c", LOGS_IN).stdout
    users = _manage(production_database, "shell", "-c", "from django.contrib.auth.models import User;"
                    f"print('users:', User.objects.filter(username={DEMO_USERNAME!r}).count())")
    assert "users: 0" in users.stdout, users.stderr


def test_production_shuts_an_account_a_demo_left_in_its_database(production_database):
    made = _manage(production_database, "ensure_demo_admin", demo=True)
    assert made.returncode == 0, made.stderr
    assert "logs in: True" in _manage(production_database, "shell", "-c", LOGS_IN, demo=True).stdout
    # Outside the demo it never opens, even before anyone shuts it (shop/auth.py).
    assert "logs in: False" in _manage(production_database, "shell", "-c", LOGS_IN).stdout
    refused = _manage(production_database, "ensure_demo_admin")
    assert refused.returncode != 0
    assert "has been deactivated" in refused.stderr
    assert "logs in: False" in _manage(production_database, "shell", "-c", LOGS_IN).stdout
