"""Idempotent cart writes: a retried request is answered with its first outcome, never applied twice.

A client that gets no answer (a timeout, a worker killed after the commit, a 503 from a layer in
front) cannot know whether its add happened. With an `Idempotency-Key` request header (the IETF
httpapi draft "The Idempotency-Key HTTP Header Field") it can simply send the request again: the
first outcome, success or refusal, is stored with the change in one transaction, and a repeat with
the same key from the same session gets that outcome back, marked `Idempotent-Replayed: true`,
without touching the cart. A request that failed without an answer (5xx, an exception) stored
nothing, so its retry is applied as new. Outcomes are kept IDEMPOTENCY_KEY_SECONDS (`clearcarts`
removes older ones). Requests without the header work as before.
"""

import hashlib
import json
import re
from datetime import timedelta
from functools import wraps

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import JsonResponse
from django.utils import timezone

from shop.models import IdempotentRequest

HEADER = "Idempotency-Key"
# The draft's keys are opaque strings; a UUID or a random hex string is typical.
VALID_KEY = re.compile(r"[\x21-\x7e]{8,100}")


def idempotent(view, *, on_replay):
    """Make a write view replay its first outcome to retries with the same Idempotency-Key.

    `on_replay(request, response)` finishes a replayed answer (e.g. sets the hint cookie).
    """

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return view(request, *args, **kwargs)
        if not VALID_KEY.fullmatch(key):
            return JsonResponse({"error": f"{HEADER} must be 8 to 100 printable ASCII characters."}, status=400)
        fingerprint = _fingerprint(request)
        with transaction.atomic():
            earlier = _earlier_outcome(request, key)
            if earlier is not None:
                return _replay(request, earlier, fingerprint, on_replay)
            response = view(request, *args, **kwargs)
            if response.status_code < 500 and request.session.session_key:
                if not _store(request, key, fingerprint, response):
                    # A retry of this very request committed first, while this one waited for
                    # the cart's lock: undo this one and answer as that one did.
                    earlier = _earlier_outcome(request, key)
                    transaction.set_rollback(True)
                    return _replay(request, earlier, fingerprint, on_replay)
            return response

    return wrapper


def _fingerprint(request):
    return hashlib.sha256(b"\n".join([request.method.encode(), request.path.encode(), request.body])).hexdigest()


def _earlier_outcome(request, key):
    """Return the stored outcome of this session's request with this key, if still kept."""
    session_key = request.session.session_key
    if not session_key:
        return None
    since = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_KEY_SECONDS)
    return IdempotentRequest.objects.filter(session_key=session_key, key=key, created_at__gte=since).first()


def _store(request, key, fingerprint, response):
    """Store the outcome with the change; False if another request with this key stored first."""
    session_key = request.session.session_key
    since = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_KEY_SECONDS)
    IdempotentRequest.objects.filter(session_key=session_key, key=key, created_at__lt=since).delete()
    try:
        with transaction.atomic():
            IdempotentRequest.objects.create(
                session_key=session_key, key=key, fingerprint=fingerprint,
                status=response.status_code, body=response.content.decode(),
            )
    except IntegrityError:
        return False
    return True


def _replay(request, earlier, fingerprint, on_replay):
    """Answer a retry as its first request was answered, or refuse a key reused for another request."""
    if earlier.fingerprint != fingerprint:
        return JsonResponse(
            {"error": f"This {HEADER} was used for another request; send a new key for a new action."}, status=422
        )
    response = JsonResponse(json.loads(earlier.body), status=earlier.status)
    response["Idempotent-Replayed"] = "true"
    return on_replay(request, response)
