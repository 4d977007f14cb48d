"""A throwaway MariaDB primary and replica, really replicating, for the read-replica tests.

    with ReplicatedMariaDB(folder, primary_port=23306, replica_port=23307) as pair:
        pair.url("primary", "shop")       # mysql://root@127.0.0.1:23306/shop: DATABASE_URL
        pair.url("replica", "shop")       # ... :23307: DATABASE_REPLICA_URL
        pair.query("replica", "SELECT ...")
        pair.wait_until_caught_up()       # the replica has applied all the primary wrote
        pair.stop_replica()               # the replica's server down (by PID) ...
        pair.start_replica()              # ... and back; it resumes replicating by itself
        pair.pause_replication()          # STOP SLAVE SQL_THREAD: up, but not replicating
        pair.resume_replication()
        pair.delay_replication(30)        # MASTER_DELAY: replicating, 30 s behind

How it is built, in the order of a real set-up (docs/scale-out.md has the production one):

1. `mariadb-install-db` writes the primary's data folder, copied for the replica: two fresh
   servers with the same system tables. Root has no password; both listen on 127.0.0.1 only.
2. Both are harness.servers.MariaDB: the Debian server binary with `--no-defaults` (nothing
   from /etc/mysql, so the system MariaDB on 3306 is never touched), their own ports, sockets,
   pidfiles and logs.
   The primary has `server-id=1` and a binary log; the replica `server-id=2` and `read_only`.
3. On the primary, a user `repl` with REPLICATION SLAVE; on the replica, CHANGE MASTER TO the
   primary with MASTER_USE_GTID=slave_pos. A fresh replica's GTID position is empty, so it
   replays the primary's binary log from its start: every database created later replicates.
4. START SLAVE, then wait until both replica threads run.

Everything lives in `folder`; both servers stop by PID (SIGTERM, then SIGKILL).
"""

import time
from pathlib import Path

import MySQLdb

from harness.process import StackError, port_is_free
from harness.servers import MariaDB

REPLICATION_USER = "repl"
REPLICATION_PASSWORD = "repl-password"

# Small and fast, on top of MariaDB.OPTIONS (a small buffer pool, no fsync per commit): no
# performance schema, a small redo log.
_SERVER_OPTIONS = (
    "--performance-schema=OFF",
    "--innodb-log-file-size=8M",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_unicode_ci",
)
_ROLE_OPTIONS = {
    "primary": ("--server-id=1", "--log-bin=mariadb-bin", "--binlog-format=MIXED", "--sync-binlog=0"),
    # read_only keeps the application from writing here by mistake; replication and root
    # (READ_ONLY ADMIN) still write.
    "replica": ("--server-id=2", "--relay-log=relay-bin", "--read-only=ON"),
}


class ReplicationError(StackError):
    """A server did not start or stop, or replication did not start."""


class ReplicatedMariaDB:
    """Two mariadbd processes: a primary with a binary log, and a replica following it."""

    def __init__(self, folder, primary_port=23306, replica_port=23307):
        self.folder = Path(folder)
        self.ports = {"primary": int(primary_port), "replica": int(replica_port)}
        self.servers = {
            role: MariaDB(self.folder / role, port, options=(*_SERVER_OPTIONS, *_ROLE_OPTIONS[role]))
            for role, port in self.ports.items()
        }

    # --- addresses ---------------------------------------------------------------------

    def url(self, role, database):
        """Return the DATABASE_URL of `database` on the primary or the replica."""
        return self.servers[role].url(database)

    # --- start and stop ----------------------------------------------------------------

    def start(self, timeout=60):
        """Install, start both servers and replication; return once the replica replicates."""
        deadline = time.monotonic() + timeout
        for role, port in self.ports.items():
            if not port_is_free("127.0.0.1", port):
                raise ReplicationError(f"127.0.0.1:{port} (the {role}) is in use; pick other ports")
        self._install()
        try:
            for server in self.servers.values():
                server.start(timeout)
            self.query(
                "primary",
                f"CREATE USER '{REPLICATION_USER}'@'127.0.0.1' IDENTIFIED BY '{REPLICATION_PASSWORD}'",
                f"GRANT REPLICATION SLAVE ON *.* TO '{REPLICATION_USER}'@'127.0.0.1'",
            )
            self.query(
                "replica",
                f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={self.ports['primary']}, "
                f"MASTER_USER='{REPLICATION_USER}', MASTER_PASSWORD='{REPLICATION_PASSWORD}', "
                # Reconnect after 1 s, not 60, when the primary was away (tests restart servers).
                "MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1",
                "START SLAVE",
            )
            self.wait_until_replicating(deadline - time.monotonic())
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout=30):
        """Stop both servers by PID, the replica first."""
        for role in ("replica", "primary"):
            self.servers[role].stop(timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def stop_replica(self, timeout=30):
        """Stop the replica's server: connections to it are refused until start_replica()."""
        self.servers["replica"].stop(timeout)

    def start_replica(self, timeout=60):
        """Start the replica's server again; it reconnects to the primary and catches up."""
        deadline = time.monotonic() + timeout
        self.servers["replica"].start(timeout)
        self.wait_until_replicating(deadline - time.monotonic())

    # --- replication -------------------------------------------------------------------

    def replica_status(self):
        """Return SHOW SLAVE STATUS as a dict (what shop/replicas.py reads)."""
        connection = self.servers["replica"].connect()
        try:
            cursor = connection.cursor(MySQLdb.cursors.DictCursor)
            cursor.execute("SHOW SLAVE STATUS")
            return cursor.fetchone() or {}
        finally:
            connection.close()

    def wait_until_replicating(self, timeout=30):
        """Wait until the replica's IO and SQL threads both run."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.replica_status()
            if status.get("Slave_IO_Running") == "Yes" and status.get("Slave_SQL_Running") == "Yes":
                return status
            if time.monotonic() > deadline:
                errors = {k: v for k, v in status.items() if k.startswith("Last_") and v}
                raise ReplicationError(f"the replica is not replicating: {errors}\n{self.log_tail('replica')}")
            time.sleep(0.1)

    def wait_until_caught_up(self, timeout=30):
        """Wait until the replica has applied everything the primary has written so far."""
        [(position,)] = self.query("primary", "SELECT @@gtid_binlog_pos")
        # MASTER_GTID_WAIT returns 0 once the replica reached the position, -1 on timeout.
        [(answer,)] = self.query("replica", f"SELECT MASTER_GTID_WAIT('{position}', {float(timeout)})")
        if answer != 0:
            raise ReplicationError(f"the replica did not reach {position} in {timeout} s: {self.replica_status()}")

    def pause_replication(self):
        """Stop applying the primary's changes (SQL thread); the replica answers, but falls behind."""
        self.query("replica", "STOP SLAVE SQL_THREAD")

    def resume_replication(self):
        self.query("replica", "START SLAVE SQL_THREAD")
        self.wait_until_replicating()

    def delay_replication(self, seconds):
        """Apply each change `seconds` after the primary made it (0: no delay)."""
        self.query("replica", "STOP SLAVE", f"CHANGE MASTER TO MASTER_DELAY={int(seconds)}", "START SLAVE")
        self.wait_until_replicating()

    # --- SQL ---------------------------------------------------------------------------

    def query(self, role, *statements, database=None):
        """Run each statement on the primary or the replica (autocommit); return the last one's rows."""
        return self.servers[role].query(*statements, database=database)

    def _install(self):
        """Write a fresh data folder for the primary once, and copy it for the replica."""
        primary, replica = self.servers["primary"], self.servers["replica"]
        if not primary.data_dir.exists():
            primary.install()
        if not replica.data_dir.exists():
            replica.install(copy_of=primary)

    def log_tail(self, role, lines=20):
        """Return the last lines of a server's log, for error messages."""
        return self.servers[role].log_tail(lines)
