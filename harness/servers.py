"""Servers of our own, on loopback ports, that a test or the benchmark may start, kill and restart.

    MariaDB     a mariadbd with its own data folder and port; root without a password
    Redis       a redis-server keeping nothing on disk
    Memcached   a memcached, TCP only
    Varnish     a varnishd in the foreground with a working folder of its own (deploy/stack.py's
                Varnish, the bench's builtin-VCL Varnish, the tests' second Varnish)

Each keeps its log in its folder (or where it is told), picks a free port unless given one, and
stops by its PID (harness.process.Process). The machine's own MariaDB, Redis and memcached are
never touched.
"""

import getpass
import os
import pwd
import shutil
import socket
import subprocess
from pathlib import Path

from harness.process import Process, StackError, free_ports, tool


def ask(port, payload, until=b"\r\n", timeout=5):
    """Send `payload` to 127.0.0.1:`port`; return the answer read until it ends with `until` (or closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        answer = b""
        while not answer.endswith(until):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


def _user():
    """Return the name of the user we run as (mariadbd and memcached, started as root, must be told)."""
    return pwd.getpwuid(os.geteuid()).pw_name


class _Throwaway(Process):
    """A server with a folder of its own (its log, its data) and a port, free unless given."""

    def __init__(self, folder, port=None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = int(port) if port else free_ports(1)[0]
        super().__init__(self.folder / f"{self.name}.log")


class MariaDB(_Throwaway):
    """A mariadbd with its own data folder and port; root without a password, on loopback only.

    `options` are added to the server's command line (a replica's server-id, a binary log, ...).
    """

    name = "mariadb"

    # Small and quick: a few dozen products and carts. Commits still reach the OS at once, so
    # killing mariadbd (what the fault tests do) loses none of them.
    OPTIONS = (
        "--bind-address=127.0.0.1",
        "--skip-name-resolve",
        "--innodb-buffer-pool-size=32M",
        "--innodb-flush-log-at-trx-commit=2",
    )

    def __init__(self, folder, port=None, options=()):
        super().__init__(folder, port)
        self.options = tuple(options)
        self.database = None

    @property
    def data_dir(self):
        return self.folder / "data"

    def url(self, database):
        """Return the DATABASE_URL of `database` on this server."""
        return f"mysql://root@127.0.0.1:{self.port}/{database}"

    def install(self, copy_of=None):
        """Write a fresh data folder with mariadb-install-db, or copy the one of `copy_of` (not started yet)."""
        if copy_of is not None:
            shutil.copytree(copy_of.data_dir, self.data_dir, symlinks=True)
            return
        hint = "apt-get install mariadb-server"
        answer = subprocess.run(
            [
                tool("mariadb-install-db", hint),
                "--no-defaults",
                f"--datadir={self.data_dir}",
                f"--user={_user()}",
                # root@localhost and root@127.0.0.1 without a password (a loopback test server).
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if answer.returncode:
            raise StackError(f"mariadb-install-db failed:\n{answer.stdout[-2000:]}{answer.stderr[-2000:]}")

    def start(self, timeout=60):
        self.spawn(
            [
                tool("mariadbd", "apt-get install mariadb-server"),
                "--no-defaults",  # nothing from /etc/mysql: the machine's MariaDB is never touched
                f"--user={_user()}",  # root must say so, or mariadbd refuses
                f"--datadir={self.data_dir}",
                f"--port={self.port}",
                f"--socket={self.folder / 'mysqld.sock'}",
                f"--pid-file={self.folder / 'mysqld.pid'}",
                *self.OPTIONS,
                *self.options,
            ]
        )
        self.wait_until(self.answers, timeout, f"connections on port {self.port}")

    def connect(self, database=None, timeout=5):
        """Return a MySQLdb connection as root, to `database` if given."""
        import MySQLdb

        options = {"database": database} if database else {}
        return MySQLdb.connect(
            host="127.0.0.1", port=self.port, user="root", connect_timeout=timeout, charset="utf8mb4", **options
        )

    def answers(self):
        try:
            self.connect(timeout=2).close()
            return True
        except Exception:  # MySQLdb's errors: not up yet
            return False

    def query(self, *statements, database=None):
        """Run each statement (autocommit); return the last one's rows."""
        connection = self.connect(database)
        try:
            connection.autocommit(True)
            cursor = connection.cursor()
            for statement in statements:
                cursor.execute(statement)
            return cursor.fetchall()
        finally:
            connection.close()

    def create_database(self, name):
        """Create database `name`; return its DATABASE_URL."""
        self.query(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        self.database = name
        return self.url(name)


class Redis(_Throwaway):
    """A redis-server on its own port, keeping nothing on disk."""

    name = "redis"

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout=30):
        self.spawn([tool("redis-server", "apt-get install redis-server"), "--port", str(self.port),
                    "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(self.folder)])  # fmt: skip
        self.wait_until(self.answers, timeout, f"PONG on port {self.port}")
        return self

    def answers(self):
        try:
            return ask(self.port, b"PING\r\n", timeout=1).startswith(b"+PONG")
        except OSError:
            return False

    def command(self, *args):
        """Send one command; return the first line of the answer (enough for FLUSHALL, DBSIZE)."""
        return ask(self.port, " ".join(args).encode() + b"\r\n").split(b"\r\n")[0].decode()


class Memcached(_Throwaway):
    """A memcached on its own port, TCP only, `memory` MB."""

    name = "memcached"

    def __init__(self, folder, port=None, memory=16):
        super().__init__(folder, port)
        self.memory = int(memory)

    @property
    def location(self):
        return f"127.0.0.1:{self.port}"

    def start(self, timeout=30):
        # -u: memcached refuses to run as root unless told which user to be.
        self.spawn([tool("memcached", "apt-get install memcached"), "-l", "127.0.0.1", "-p", str(self.port),
                    "-U", "0", "-m", str(self.memory), "-u", getpass.getuser()])  # fmt: skip
        self.wait_until(lambda: self.stats() is not None, timeout, f"stats on port {self.port}")
        return self

    def stats(self):
        """Return memcached's `stats` as a dict, or None if it does not answer."""
        try:
            answer = ask(self.port, b"stats\r\n", until=b"END\r\n", timeout=1)
        except OSError:
            return None
        if not answer.endswith(b"END\r\n"):
            return None
        lines = answer.decode().splitlines()
        return {parts[1]: parts[2] for parts in (line.split() for line in lines) if parts[0] == "STAT"}

    def version(self):
        return ask(self.port, b"version\r\n", timeout=2).decode().split()[-1]


class Varnish(Process):
    """varnishd in the foreground (-F, a child like the others) on 127.0.0.1:`port`, running `vcl`.

    Its working folder (-n) is `work_dir`, not /var/lib/varnish: `varnishadm -n <work_dir>` reaches
    it. VCL includes resolve beside `vcl` first. As deploy/systemd/varnish.service.d/shop.conf,
    http_gzip_support is off: the gzip and identity copies Nginx sends are kept as they are.
    """

    name = "varnish"

    def __init__(self, work_dir, port, vcl, log_path, storage="malloc,256m", **process):
        super().__init__(log_path, program="varnishd", **process)
        self.work_dir = Path(work_dir)
        self.port = int(port)
        self.vcl = Path(vcl)
        self.storage = storage

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def argv(self):
        options = {
            "-n": str(self.work_dir),
            "-a": f"127.0.0.1:{self.port}",
            "-f": str(self.vcl),
            "-p": f"vcl_path={self.vcl.parent}:/usr/share/varnish/vcl",
            "-s": self.storage,
            **({"-P": str(self.pidfile)} if self.pidfile else {}),
        }
        hint = "`make stack` installs it (apt-get install nginx varnish)"
        return [tool("varnishd", hint), "-F", *[part for option in options.items() for part in option],
                "-p", "http_gzip_support=off"]  # fmt: skip

    def start(self, timeout=30, ready_path=None, env=None):
        """Start it; wait until it listens, or until `ready_path` answers 200 through it."""
        self.spawn(self.argv(), env=env)
        if ready_path:
            self.wait_for_200(self.url + ready_path, timeout)
        else:
            self.wait_listening(self.port, timeout)
        return self
