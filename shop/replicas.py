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

from django.conf import settings
from django.db import InterfaceError, OperationalError, connections

logger = logging.getLogger(__name__)

REPLICA = "replica"
CATALOG_MODELS = {"category", "product"}

_replica_reads_allowed = contextvars.ContextVar("replica_reads_allowed", default=False)
# Set when the router sent a read to the replica, so a failure can be put down to it.
_replica_read = contextvars.ContextVar("replica_read", default=False)


def render_from_replica(view, *args, **kwargs):
    """Call `view` with catalog reads on the replica; if the replica fails it, call it again on the primary.

    Between two health checks the replica may go away: the read that finds it gone costs a
    second render, not an error page.
    """
    allowed, read = _replica_reads_allowed.set(True), _replica_read.set(False)
    try:
        return view(*args, **kwargs)
    except (OperationalError, InterfaceError):
        if not _replica_read.get():
            raise  # the primary failed: the error page is the truth
        health.mark_down()
        if REPLICA in connections.databases:
            connections[REPLICA].close()  # a fresh connection once the replica is back
    finally:
        _replica_reads_allowed.reset(allowed)
        _replica_read.reset(read)
    return view(*args, **kwargs)


def wait_for_replica():
    """Wait until the replica has applied this connection's last commit (at most the allowed lag).

    Called before cached pages are dropped, so that the next render, which may read the replica,
    finds the change there. Return False if the replica did not get there in time: this process
    then skips it, and the caller must expect other processes to read it until their next check.
    """
    if REPLICA not in connections.databases or connections["default"].vendor != "mysql":
        return True
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT @@last_gtid")  # MariaDB: this session's last committed transaction
            (gtid,) = cursor.fetchone()
        if not gtid:
            return True
        with connections[REPLICA].cursor() as cursor:
            cursor.execute("SELECT MASTER_GTID_WAIT(%s, %s)", [gtid, settings.REPLICA_MAX_LAG_SECONDS])
            (reached,) = cursor.fetchone()
    except Exception as exc:  # the replica is down, or this is not MariaDB
        logger.info("could not wait for the replica: %s", exc)
        reached = -1
    if reached != 0:
        health.mark_down()
        return False
    return True


def replica_settle_seconds():
    """How long until every process skips a replica that is behind: past the lag limit, checked."""
    return settings.REPLICA_MAX_LAG_SECONDS + 2 * settings.REPLICA_CHECK_SECONDS


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

    def mark_down(self):
        """Skip the replica until the next check is due: a read from it just failed."""
        with self._lock:
            if self._usable:
                logger.warning("replica failed a read: reading from the primary")
            self._usable = False
            self._checked_at = time.monotonic()


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
            _replica_read.set(True)
            return REPLICA
        return "default"

    def db_for_write(self, model, **hints):
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the replica holds the same rows as the primary

    def allow_migrate(self, db, app_label, **hints):
        return db == "default"  # the replica gets its tables by replication
