from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import call_command
from django.utils import timezone

from shop.models import Cart
from tests.factories import CartFactory

pytestmark = pytest.mark.django_db


def _session(expires_in):
    store = SessionStore()
    store["has_cart"] = True
    store.set_expiry(expires_in)
    store.save()
    return store.session_key


def test_clearcarts_removes_carts_of_expired_or_missing_sessions_only():
    live = CartFactory(session_key=_session(3600))
    expired = CartFactory(session_key=_session(-10))
    orphan = CartFactory(session_key="no-such-session")
    out = StringIO()
    call_command("clearcarts", stdout=out)
    assert list(Cart.objects.all()) == [live]
    assert not Cart.objects.filter(pk__in=[expired.pk, orphan.pk]).exists()
    assert "Removed 2 carts" in out.getvalue()


def test_clearcarts_removes_carts_untouched_for_a_session_age(settings):
    cart = CartFactory(session_key=_session(3600))
    long_ago = timezone.now() - timedelta(seconds=settings.SESSION_COOKIE_AGE + 1)
    Cart.objects.filter(pk=cart.pk).update(updated_at=long_ago)
    call_command("clearcarts", stdout=StringIO())
    assert not Cart.objects.exists()
