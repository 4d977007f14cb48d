"""Remove carts whose sessions have expired (run daily from cron or a systemd timer).

Browsers need no word of it: the cart hint cookie ends with the session (pagecache/hint.py), so
the badge of an expired session's cart already shows 0. A cart removed while its session lives
(untouched for a whole session age) shows in the badge until the hint's refresh time at most.
"""

from datetime import timedelta

from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.management.base import BaseCommand
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from shop.models import Cart, IdempotentRequest


class Command(BaseCommand):
    help = "Delete carts whose session has expired or is gone, the expired sessions, and old idempotent outcomes."

    def handle(self, *args, **options):
        now = timezone.now()
        live_session = Session.objects.filter(session_key=OuterRef("session_key"), expire_date__gt=now)
        # A cart lives as long as its session; one untouched for a whole session age is dead too.
        untouched = Q(updated_at__lt=now - timedelta(seconds=settings.SESSION_COOKIE_AGE))
        carts = Cart.objects.filter(~Exists(live_session) | untouched)
        removed = carts.count()
        carts.delete()
        sessions, _ = Session.objects.filter(expire_date__lte=now).delete()
        # Outcomes kept for retries (shop/idempotency.py) past their time answer nothing any more.
        kept_since = now - timedelta(seconds=settings.IDEMPOTENCY_KEY_SECONDS)
        outcomes, _ = IdempotentRequest.objects.filter(created_at__lt=kept_since).delete()
        self.stdout.write(
            f"Removed {removed} carts, {sessions} expired sessions and {outcomes} outcomes of idempotent requests."
        )
