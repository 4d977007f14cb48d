"""Read the catalog from a MariaDB/MySQL replica while it is healthy; everything else from the primary.

Only shared pages read from the replica: they are cached for a TTL anyway, so a replica a second
behind changes nothing a visitor can see. The cart, the admin and every write use the primary, so
a visitor always sees their own changes on the very next request.

The router asks the replica for its lag at most every REPLICA_CHECK_SECONDS (per process). A
replica that is down, not replicating, or more than REPLICA_MAX_LAG_SECONDS behind is skipped, and
the catalog is read from the primary until it is back.
"""

import contextvars
import logging
import threading
import time
from contextlib import contextmanager

from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)

REPLICA = "replica"
CATALOG_MODELS = {"category", "product"}

_replica_reads_allowed = contextvars.ContextVar("replica_reads_allowed", default=False)


@contextmanager
def catalog_reads_from_replica():
    """Within this block, catalog reads may go to the replica (used by shared_page)."""
    token = _replica_reads_allowed.set(True)
    try:
        yield
    finally:
        _replica_reads_allowed.reset(token)


class _ReplicaHealth:
    """Remember, for a few seconds, whether the replica may be read."""

    def __init__(self):
        self._lock = threading.Lock()
        self._checked_at = float("-inf")
        self._usable = False

    def usable(self):
        now = time.monotonic()
        with self._lock:
            if now - self._checked_at < settings.REPLICA_CHECK_SECONDS:
                return self._usable
            self._checked_at = now
        usable = _check_replica()
        with self._lock:
            if usable != self._usable:
                logger.warning("replica is now %s", "in use" if usable else "skipped: reading from the primary")
            self._usable = usable
        return usable

    def forget(self):
        with self._lock:
            self._checked_at = float("-inf")


health = _ReplicaHealth()


def _check_replica():
    """Tell whether the replica answers, replicates, and is not too far behind."""
    try:
        with connections[REPLICA].cursor() as cursor:
            cursor.execute("SHOW SLAVE STATUS")
            row = cursor.fetchone()
            if row is None:
                return False
            status = dict(zip([column[0] for column in cursor.description], row, strict=True))
    except Exception as exc:  # refused, timed out, gone away
        logger.info("replica check failed: %s", exc)
        connections[REPLICA].close()
        return False
    lag = status.get("Seconds_Behind_Master")
    running = status.get("Slave_IO_Running") == "Yes" and status.get("Slave_SQL_Running") == "Yes"
    return running and lag is not None and lag <= settings.REPLICA_MAX_LAG_SECONDS


class ReplicaRouter:
    """DATABASE_ROUTERS entry: catalog reads in shared pages to the replica, all else to default."""

    def db_for_read(self, model, **hints):
        if (
            model._meta.app_label == "shop"
            and model._meta.model_name in CATALOG_MODELS
            and _replica_reads_allowed.get()
            and health.usable()
        ):
            return REPLICA
        return "default"

    def db_for_write(self, model, **hints):
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the replica holds the same rows as the primary

    def allow_migrate(self, db, app_label, **hints):
        return db == "default"  # the replica gets its tables by replication
