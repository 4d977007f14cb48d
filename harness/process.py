"""One server process of our own: started in a session of its own, stopped by its PID only.

    server = Process("/tmp/x/redis.log", name="redis")
    server.spawn(["redis-server", "--port", str(port)])
    server.wait_listening(port)          # or wait_for_200(url), or wait_until(predicate, ...)
    server.stop()                        # SIGTERM, then SIGKILL to its session; safe to repeat
    server.log_tail()

A process with a `pidfile` (and the `program` its /proc/<pid>/cmdline must name) can be
stopped by another Python process too, as `make stack-down` stops what `make stack` started:
the PID is read from the file and signalled only while that PID still runs `program`.
"""

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Where Debian puts nginx, varnishd and mariadbd; a non-root PATH often lacks them.
SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])

# Loopback requests must never go to an http_proxy from the environment.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class StackError(RuntimeError):
    """A server did not start or stop, or a preparation step failed."""


def tool(name, hint=""):
    """Return the path of program `name` (PATH and the sbin folders), or raise StackError."""
    path = shutil.which(name, path=SBIN_PATH)
    if path is None:
        raise StackError(f"{name} is not installed{': ' + hint if hint else ''}")
    return path


def free_ports(count, host="127.0.0.1"):
    """Return `count` distinct ports of `host` that nobody listens on right now."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_is_free(host, port):
    """Tell whether a server could listen on host:port now (connections in TIME_WAIT do not count)."""
    with socket.socket() as sock:
        # As the servers do, so that connections in TIME_WAIT do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def accepts(port, host="127.0.0.1"):
    """Tell whether something accepts TCP connections on host:port."""
    with socket.socket() as sock:
        return sock.connect_ex((host, port)) == 0


def http_get(url, headers=None, timeout=10):
    """GET `url`; return (status, headers, body) without raising on HTTP errors."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with HTTP.open(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def answers_200(url, timeout=2):
    """Tell whether `url` answers 200 now."""
    try:
        return http_get(url, timeout=timeout)[0] == 200
    except OSError:
        return False


def log_tail(paths, lines=25):
    """Return the last `lines` lines of each file in `paths`, each under its name, for error messages."""
    parts = []
    for path in paths:
        try:
            tail = Path(path).read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            continue
        parts.append(f"--- {path} ---\n" + "\n".join(tail))
    return "\n".join(parts)


def is_running(pid, command=None):
    """Tell whether `pid` is alive (not a zombie) and, if given, runs `command`."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rpartition(")")[2].split()[0]
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            argv0 = cmdline.read().split(b"\0")[0].decode(errors="replace")
    except (OSError, IndexError):
        return False
    return state != "Z" and (command is None or command in argv0)


def kill_group(pid):
    """SIGKILL `pid` and, when it leads its own process group, its workers with it."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class Process:
    """A server started in a session of its own (a Ctrl-C in the caller spares it), stopped by its PID."""

    name = "server"

    def __init__(self, log_path, name=None, pidfile=None, program=None):
        self.log_path = Path(log_path)
        if name:
            self.name = name
        self.pidfile = Path(pidfile) if pidfile else None
        # What /proc/<pid>/cmdline must name before the pidfile's PID is signalled: never a
        # stranger that reused the PID of a stale pidfile.
        self.program = program
        self.proc = None

    def spawn(self, command, env=None, cwd=ROOT):
        """Start `command`, its output appended to the log file."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self.proc

    # --- which process ------------------------------------------------------------------

    def file_pid(self):
        """Return the PID in the pidfile if that process is alive and runs `program`."""
        if self.pidfile is None:
            return None
        try:
            pid = int(self.pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if is_running(pid, self.program) else None

    @property
    def pid(self):
        """Return the PID to signal: the pidfile's, else our own child's while it runs; None if neither."""
        pid = self.file_pid()
        if pid is None and self.proc is not None and self.proc.poll() is None:
            pid = self.proc.pid  # started, but not yet (or never) written its pidfile
        return pid

    def exit_status(self):
        """Return our child's exit status once it has exited; None while it runs or before a start."""
        return None if self.proc is None else self.proc.poll()

    # --- waiting ------------------------------------------------------------------------

    def wait_until(self, ready, timeout, what):
        """Call `ready` until it returns true; raise StackError if the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            if self.exit_status() is not None:
                raise StackError(f"{self.name} exited with status {self.proc.returncode} while waiting for "
                                 f"{what}\n{self.log_tail()}")  # fmt: skip
            if ready():
                return
            if time.monotonic() > deadline:
                raise StackError(f"{self.name}: {what} not within {timeout} s\n{self.log_tail()}")
            time.sleep(0.05)

    def wait_listening(self, port, timeout=30, host="127.0.0.1"):
        """Wait until the server accepts connections on host:port."""
        self.wait_until(lambda: accepts(port, host), timeout, f"a listener on {host}:{port}")

    def wait_for_200(self, url, timeout=60):
        """Wait until `url` answers 200."""
        self.wait_until(lambda: answers_200(url), timeout, f"{url} answering 200")

    # --- stopping -----------------------------------------------------------------------

    def stop(self, timeout=20, signum=signal.SIGTERM):
        """Send `signum` (SIGTERM) and wait; if it is still there after `timeout`, SIGKILL its session.

        Safe to repeat, and a no-op for a server that is not running.
        """
        pid = self.pid
        if pid is not None:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass
            if not self._wait_exit(pid, timeout):
                # It ignored the signal: end its whole session (master and workers).
                kill_group(pid)
                if not self._wait_exit(pid, 5):
                    raise StackError(f"{self.name} (pid {pid}) did not exit")
        if self.pidfile is not None:
            self.pidfile.unlink(missing_ok=True)
        self.proc = None  # stopped on purpose: no longer a child whose exit is news

    def kill(self, timeout=20):
        """SIGKILL the server: a crash, with no goodbye to its clients."""
        self.stop(timeout, signal.SIGKILL)

    def _wait_exit(self, pid, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # Our own child must be reaped (poll), or it lingers as a zombie.
            if self.proc is not None and self.proc.pid == pid:
                if self.proc.poll() is not None:
                    return True
            elif not is_running(pid):
                return True
            time.sleep(0.05)
        return False

    def log_tail(self, lines=30):
        """Return the last `lines` lines of the log file."""
        return log_tail([self.log_path], lines)
