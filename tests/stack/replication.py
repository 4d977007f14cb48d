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

1. `mariadb-install-db` writes one data folder, copied for the replica: two fresh servers with
   the same system tables. Root has no password; both servers listen on 127.0.0.1 only.
2. Both run the Debian server binary with `--no-defaults` (nothing from /etc/mysql, so the
   system MariaDB on 3306 is never touched), their own ports, sockets, pidfiles and logs.
   The primary has `server-id=1` and a binary log; the replica `server-id=2` and `read_only`.
3. On the primary, a user `repl` with REPLICATION SLAVE; on the replica, CHANGE MASTER TO the
   primary with MASTER_USE_GTID=slave_pos. A fresh replica's GTID position is empty, so it
   replays the primary's binary log from its start: every database created later replicates.
4. START SLAVE, then wait until both replica threads run.

Everything lives in `folder`; both servers stop by PID (SIGTERM, then SIGKILL).
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import MySQLdb

# Debian's server binary and installer (the mariadb-server package).
MARIADBD = "/usr/sbin/mariadbd"
INSTALL_DB = "mariadb-install-db"

REPLICATION_USER = "repl"
REPLICATION_PASSWORD = "repl-password"

# Small and fast: this is a test server. No performance schema, a small buffer pool and
# redo log, and no fsync per commit (a crash loses nothing a test needs).
_SERVER_OPTIONS = (
    "--bind-address=127.0.0.1",
    "--skip-name-resolve",
    "--performance-schema=OFF",
    "--innodb-buffer-pool-size=32M",
    "--innodb-log-file-size=8M",
    "--innodb-flush-log-at-trx-commit=2",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_unicode_ci",
)
_ROLE_OPTIONS = {
    "primary": ("--server-id=1", "--log-bin=mariadb-bin", "--binlog-format=MIXED", "--sync-binlog=0"),
    # read_only keeps the application from writing here by mistake; replication and root
    # (READ_ONLY ADMIN) still write.
    "replica": ("--server-id=2", "--relay-log=relay-bin", "--read-only=ON"),
}


class ReplicationError(RuntimeError):
    """A server did not start or stop, or replication did not start."""


class ReplicatedMariaDB:
    """Two mariadbd processes: a primary with a binary log, and a replica following it."""

    def __init__(self, folder, primary_port=23306, replica_port=23307):
        self.folder = Path(folder)
        self.ports = {"primary": int(primary_port), "replica": int(replica_port)}
        self._procs = {}

    # --- addresses ---------------------------------------------------------------------

    def url(self, role, database):
        """Return the DATABASE_URL of `database` on the primary or the replica."""
        return f"mysql://root@127.0.0.1:{self.ports[role]}/{database}"

    # --- start and stop ----------------------------------------------------------------

    def start(self, timeout=60):
        """Install, start both servers and replication; return once the replica replicates."""
        deadline = time.monotonic() + timeout
        for role, port in self.ports.items():
            _check_free(port, role)
        self._install()
        try:
            for role in self.ports:
                self._start_server(role)
            for role in self.ports:
                self._wait_for_server(role, deadline)
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
            self._stop_server(role, timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def stop_replica(self, timeout=30):
        """Stop the replica's server: connections to it are refused until start_replica()."""
        self._stop_server("replica", timeout)

    def start_replica(self, timeout=60):
        """Start the replica's server again; it reconnects to the primary and catches up."""
        deadline = time.monotonic() + timeout
        self._start_server("replica")
        self._wait_for_server("replica", deadline)
        self.wait_until_replicating(deadline - time.monotonic())

    # --- replication -------------------------------------------------------------------

    def replica_status(self):
        """Return SHOW SLAVE STATUS as a dict (what shop/replicas.py reads)."""
        connection = self._connect("replica")
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
        connection = self._connect(role, database)
        try:
            cursor = connection.cursor()
            for statement in statements:
                cursor.execute(statement)
            return cursor.fetchall()
        finally:
            connection.close()

    def _connect(self, role, database=None):
        options = {"db": database} if database else {}
        connection = MySQLdb.connect(
            host="127.0.0.1", port=self.ports[role], user="root", connect_timeout=5, charset="utf8mb4", **options
        )
        connection.autocommit(True)
        return connection

    # --- helpers -----------------------------------------------------------------------

    def _data_dir(self, role):
        return self.folder / role / "data"

    def _install(self):
        """Write a fresh data folder once, and copy it for the replica."""
        template = self.folder / "template"
        if not template.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            install = shutil.which(INSTALL_DB) or shutil.which(INSTALL_DB, path="/usr/bin:/usr/sbin")
            if install is None or not Path(MARIADBD).exists():
                raise ReplicationError("MariaDB server is not installed: apt-get install mariadb-server")
            answer = subprocess.run(
                [
                    install,
                    "--no-defaults",
                    f"--datadir={template}",
                    f"--user={_user()}",
                    # root@localhost and root@127.0.0.1 without a password (a loopback test server).
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                    "--innodb-log-file-size=8M",
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
            if answer.returncode:
                raise ReplicationError(f"mariadb-install-db failed:\n{answer.stdout[-2000:]}{answer.stderr[-2000:]}")
        for role in self.ports:
            if not self._data_dir(role).exists():
                shutil.copytree(template, self._data_dir(role), symlinks=True)

    def _start_server(self, role):
        base = self.folder / role
        command = [
            MARIADBD,
            "--no-defaults",
            f"--user={_user()}",
            f"--datadir={self._data_dir(role)}",
            f"--port={self.ports[role]}",
            f"--socket={base / 'mysqld.sock'}",
            f"--pid-file={base / 'mysqld.pid'}",
            f"--log-error={base / 'error.log'}",
            *_SERVER_OPTIONS,
            *_ROLE_OPTIONS[role],
        ]
        self._procs[role] = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _wait_for_server(self, role, deadline):
        while True:
            proc = self._procs[role]
            if proc.poll() is not None:
                raise ReplicationError(f"{role} exited with {proc.returncode}\n{self.log_tail(role)}")
            try:
                self._connect(role).close()
                return
            except MySQLdb.OperationalError:
                pass
            if time.monotonic() > deadline:
                raise ReplicationError(f"{role} did not accept connections in time\n{self.log_tail(role)}")
            time.sleep(0.1)

    def _stop_server(self, role, timeout):
        proc = self._procs.pop(role, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)  # mariadbd's clean shutdown
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def log_tail(self, role, lines=20):
        """Return the last lines of a server's error log, for error messages."""
        path = self.folder / role / "error.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return f"--- {path} ---\n" + "\n".join(text.splitlines()[-lines:])


def _user():
    """Return the name mariadbd runs as: the caller (root must say so, or mariadbd refuses)."""
    return pwd.getpwuid(os.geteuid()).pw_name


def _check_free(port, role):
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise ReplicationError(f"127.0.0.1:{port} (the {role}) is in use; pick other ports") from None
