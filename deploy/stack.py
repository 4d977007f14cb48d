#!/usr/bin/env python3
"""Run the production stack on loopback, from the very files in deploy/.

    browser -> Varnish :6081 -> Nginx :8081 -> uWSGI (unix socket) -> Django

From the checkout, once the venv is built (`make stack` does the same and installs Nginx
and Varnish when missing):

    python deploy/stack.py start     # prepare Django, start the servers, wait for /healthz
    python deploy/stack.py status    # which servers run, and whether /healthz answers
    python deploy/stack.py stop      # stop them by PID; safe to repeat
    python deploy/stack.py start --varnish-port 7081 --nginx-port 7082 --run-dir /tmp/s

`start` first runs `manage.py migrate --noinput`, `createcachetable` and `collectstatic
--noinput` (`--skip-manage` skips them) with the environment the servers get: yours, so
DATABASE_URL, CACHE_URL and the rest pass through; SHOP_DEMO=1 unless you set it;
VARNISH_URL pointing at this stack's Varnish; UWSGI_PROCESSES, the worker count that
deploy/uwsgi/shop.ini reads.

From Python, e.g. in a pytest fixture (`from deploy.stack import Stack` with the
checkout on sys.path; deploy/ needs no __init__.py):

    stack = Stack(root, run_dir, varnish_port=6081, nginx_port=8081, processes=2,
                  env={"DATABASE_URL": "..."})
    with stack:                         # start() ... stop()
        urlopen(stack.url("/healthz"))  # through Varnish; stack.nginx_url skips it
        stack.touch_reload(wait=True)   # chain reload, one worker at a time
        stack.worker_pids()             # from uWSGI's stats socket; stack.stats() has it all
        stack.stop_uwsgi()              # fault tests: Nginx answers 502, Varnish graces
        stack.start_uwsgi()
        stack.manage("seed_demo")       # manage.py with the stack's environment

How the files are rendered: each one is copied into <run>/conf/ with these replacements,
in one pass, and no others, so the stack runs what production runs:

    /srv/shop      -> the checkout          6081 -> varnish_port
    /run/shop      -> the run folder        8081 -> nginx_port
    /var/log/shop  -> <run>/logs

plus one deletion: the `uid`, `gid` and `chown-socket` lines of shop.ini. The stack runs
every process as the user who starts it: as root in CI's sandbox, where the checkout and
its SQLite file belong to root, and as yourself on a laptop, where switching to www-data
is not allowed. For the same reason Nginx's workers run as root when the stack is
started as root (Nginx would drop them to `nobody`, who cannot open the 660 socket).
Nginx's main file, which production takes from Debian (/etc/nginx/nginx.conf), is
written here: its http{} includes mime.types, then conf/nginx/conf.d/*.conf, then
conf/nginx/shop.conf, as Debian's includes conf.d/ and sites-enabled/.

The run folder (default <checkout>/.stack/):

    conf/     the rendered files: uwsgi/shop.ini, nginx/*, varnish/*.vcl
    logs/     uwsgi.log, nginx.log, nginx-error.log, nginx-access.log, varnish.log
    uwsgi.sock  stats.sock  reload  uwsgi.pid  nginx.pid  varnish.pid
    nginx/    Nginx's temp folders
    varnish/  varnishd's working folder (-n): `varnishlog -n .stack/varnish` reads it
"""

import argparse
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Where Debian puts nginx and varnishd; a non-root PATH often lacks them.
SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])

# The production values in deploy/ that rendering replaces.
PRODUCTION_PATHS = ("/srv/shop", "/run/shop", "/var/log/shop")
PRODUCTION_VARNISH_PORT = 6081
PRODUCTION_NGINX_PORT = 8081

# shop.ini lines that only make sense when a root-started uWSGI drops to www-data.
_USER_SWITCH_LINES = re.compile(r"^(uid|gid|chown-socket)\s*=.*\n", re.MULTILINE)

# The longest path a unix socket may have (sun_path is 108 bytes on Linux).
_MAX_SOCKET_PATH = 107

# Urllib must never send loopback requests to an http_proxy from the environment.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))

NGINX_MAIN_CONF = """\
# Written by deploy/stack.py: the stack's stand-in for Debian's /etc/nginx/nginx.conf.
{user}worker_processes auto;
pid {run}/nginx.pid;
error_log {logs}/nginx-error.log;
# deploy/stack.py supervises the master and stops it by PID.
daemon off;

events {{
    worker_connections 768;
}}

http {{
    sendfile on;
    tcp_nopush on;
    types_hash_max_size 2048;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {logs}/nginx-access.log;

    client_body_temp_path {run}/nginx/client_body;
    proxy_temp_path {run}/nginx/proxy;
    fastcgi_temp_path {run}/nginx/fastcgi;
    uwsgi_temp_path {run}/nginx/uwsgi;
    scgi_temp_path {run}/nginx/scgi;

    include {conf}/conf.d/*.conf;
    include {conf}/shop.conf;
}}
"""


class StackError(RuntimeError):
    """A server did not start or stop, or a preparation step failed."""


def render(text, replacements):
    """Return `text` with each production value in `replacements` replaced, in one pass."""
    pattern = "|".join(rf"(?<!\d){re.escape(old)}(?!\d)" if old.isdigit() else re.escape(old) for old in replacements)
    return re.sub(pattern, lambda match: replacements[match.group(0)], text)


class Stack:
    """Varnish, Nginx and uWSGI on loopback, run from the rendered files in deploy/."""

    def __init__(
        self,
        root=ROOT,
        run_dir=None,
        varnish_port=PRODUCTION_VARNISH_PORT,
        nginx_port=PRODUCTION_NGINX_PORT,
        processes=2,
        env=None,
    ):
        self.root = Path(root).resolve()
        self.run_dir = Path(run_dir).resolve() if run_dir else self.root / ".stack"
        self.varnish_port = int(varnish_port)
        self.nginx_port = int(nginx_port)
        self.processes = int(processes)
        self.env = dict(env or {})
        self.deploy_dir = self.root / "deploy"
        self.conf_dir = self.run_dir / "conf"
        self.log_dir = self.run_dir / "logs"
        self.reload_file = self.run_dir / "reload"
        self.started_in = None
        self._procs = {}

    # --- addresses ---------------------------------------------------------------------

    @property
    def varnish_url(self):
        return f"http://127.0.0.1:{self.varnish_port}"

    @property
    def nginx_url(self):
        return f"http://127.0.0.1:{self.nginx_port}"

    def url(self, path="/"):
        """Return the URL of `path` through Varnish, the way a browser reaches the shop."""
        return self.varnish_url + path

    # --- start and stop ----------------------------------------------------------------

    def start(self, manage=True, timeout=60):
        """Render the files, prepare Django, start every server; return the seconds it took.

        `timeout` bounds the wait for /healthz, after the manage.py steps.
        """
        began = time.monotonic()
        running = {name: pid for name, pid in self.status().items() if pid}
        if running:
            raise StackError(f"already running in {self.run_dir}: {running}; stop it first")
        self._check_tools()
        self._check_free_ports()
        self._prepare_run_dir()
        self.render()
        if manage:
            self.prepare_django()
        deadline = time.monotonic() + timeout
        try:
            self.start_uwsgi(wait=False)
            self._start_nginx()
            # Varnish probes the backend as soon as it starts: start it once Nginx and
            # uWSGI answer, so that its first probe already finds them healthy.
            self._wait_for_200(self.nginx_url + "/healthz", deadline, "Nginx -> uWSGI -> Django")
            self._start_varnish()
            self._wait_for_200(self.url("/healthz"), deadline, "Varnish -> Nginx -> uWSGI -> Django")
            self._wait_for_workers(deadline)
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - began
        return self.started_in

    def stop(self, timeout=20):
        """Stop every server by its PID, front to back, and wait for each to exit."""
        # Varnish first, so no new request reaches a backend that is going away.
        self._stop("varnish", signal.SIGTERM, timeout)
        # Nginx: SIGTERM is its fast shutdown.
        self._stop("nginx", signal.SIGTERM, timeout)
        self.stop_uwsgi(timeout)

    def start_uwsgi(self, wait=True, timeout=60):
        """Start uWSGI from the rendered shop.ini; with `wait`, until every worker accepts."""
        self._spawn("uwsgi", [str(self._venv_bin("uwsgi")), "--ini", str(self.conf_dir / "uwsgi" / "shop.ini")])
        if wait:
            self._wait_for_workers(time.monotonic() + timeout)

    def stop_uwsgi(self, timeout=20):
        """Stop uWSGI: SIGTERM, which die-on-term turns into a shutdown (not a reload)."""
        self._stop("uwsgi", signal.SIGTERM, timeout)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()

    # --- while running -----------------------------------------------------------------

    def status(self):
        """Return {server: PID or None} from the pidfiles in the run folder."""
        return {name: self._pid(name) for name in self._PIDFILES}

    def touch_reload(self, wait=False, timeout=60):
        """Touch the reload file (a chain reload); with `wait`, until no old worker is left."""
        old_pids = set(self.worker_pids()) if wait else set()
        # uWSGI compares whole-second mtimes: step past the last touch, or it is missed.
        last = self.reload_file.stat().st_mtime if self.reload_file.exists() else 0
        mtime = max(time.time(), last + 1)
        self.reload_file.touch()
        os.utime(self.reload_file, (mtime, mtime))
        if wait:
            self._wait_for_workers(time.monotonic() + timeout, replacing=old_pids)

    def stats(self):
        """Return what uWSGI's stats socket reports: workers, their PIDs, requests, RSS."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.run_dir / "stats.sock"))
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return json.loads(b"".join(chunks))

    def worker_pids(self):
        """Return the PIDs of uWSGI's workers."""
        return [worker["pid"] for worker in self.stats()["workers"]]

    def manage(self, *args):
        """Run `manage.py *args` with the stack's environment; return its output."""
        return self._finish_manage(self._start_manage(*args))

    def prepare_django(self):
        """Migrate, create the cache table and collect the static files, as a deploy does."""
        # collectstatic only writes files, so it runs beside the database steps.
        collect = self._start_manage("collectstatic", "--noinput")
        try:
            self.manage("migrate", "--noinput")
            self.manage("createcachetable")
        except BaseException:
            collect.kill()
            collect.communicate()
            raise
        self._finish_manage(collect)

    def environ(self):
        """Return the environment of uWSGI and manage.py: the caller's, plus the stack's."""
        env = {
            name: value
            for name, value in os.environ.items()
            # uWSGI reads every UWSGI_<OPTION> as an option, and NOTIFY_SOCKET would make
            # it notify whatever systemd unit started the caller.
            if not name.startswith("UWSGI_") and name != "NOTIFY_SOCKET"
        }
        env.setdefault("SHOP_DEMO", "1")
        env["VARNISH_URL"] = self.varnish_url
        env["UWSGI_PROCESSES"] = str(self.processes)
        env.update(self.env)
        return env

    def log_tail(self, lines=25):
        """Return the last `lines` lines of every log, for error messages."""
        parts = []
        for path in sorted(self.log_dir.glob("*.log")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path} ---\n" + "\n".join(tail))
        return "\n".join(parts)

    # --- rendering ---------------------------------------------------------------------

    def render(self):
        """Write the deploy files for this run folder and these ports into <run>/conf/."""
        replacements = {
            "/srv/shop": str(self.root),
            "/run/shop": str(self.run_dir),
            "/var/log/shop": str(self.log_dir),
            str(PRODUCTION_VARNISH_PORT): str(self.varnish_port),
            str(PRODUCTION_NGINX_PORT): str(self.nginx_port),
        }
        vcl_files = sorted((self.deploy_dir / "varnish").glob("*.vcl"))
        if not any(path.name == "default.vcl" for path in vcl_files):
            raise StackError(f"{self.deploy_dir / 'varnish' / 'default.vcl'} is missing")
        sources = {
            "uwsgi/shop.ini": self.deploy_dir / "uwsgi" / "shop.ini",
            "nginx/shop.conf": self.deploy_dir / "nginx" / "shop.conf",
            **{f"nginx/conf.d/{p.name}": p for p in (self.deploy_dir / "nginx" / "conf.d").glob("*.conf")},
            **{f"varnish/{p.name}": p for p in vcl_files},
        }
        for target, source in sources.items():
            text = render(source.read_text(), replacements)
            if target == "uwsgi/shop.ini":
                text = _USER_SWITCH_LINES.sub("", text)
            self._write(self.conf_dir / target, text)
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
        self._write(
            self.conf_dir / "nginx" / "nginx.conf",
            NGINX_MAIN_CONF.format(user=user, run=self.run_dir, logs=self.log_dir, conf=self.conf_dir / "nginx"),
        )

    # --- helpers -----------------------------------------------------------------------

    _PIDFILES = {"uwsgi": "uwsgi.pid", "nginx": "nginx.pid", "varnish": "varnish.pid"}
    # What /proc/<pid>/cmdline must contain before a signal is sent: never a stranger
    # that reused the PID of a stale pidfile.
    _COMMANDS = {"uwsgi": "uwsgi", "nginx": "nginx", "varnish": "varnishd"}

    def _start_nginx(self):
        options = {
            "-p": f"{self.run_dir}/nginx/",  # the prefix: relative paths start here
            "-c": str(self.conf_dir / "nginx" / "nginx.conf"),
            "-e": str(self.log_dir / "nginx-error.log"),  # not /var/log/nginx, even before -c is read
        }
        self._spawn("nginx", [self._tool("nginx"), *_flatten(options)])

    def _start_varnish(self):
        vcl_dir = self.conf_dir / "varnish"
        options = {
            "-n": str(self.run_dir / "varnish"),  # its working folder, not /var/lib/varnish
            "-a": f"127.0.0.1:{self.varnish_port}",
            "-f": str(vcl_dir / "default.vcl"),
            "-p": f"vcl_path={vcl_dir}:/usr/share/varnish/vcl",  # VCL includes resolve here first
            "-P": str(self.run_dir / "varnish.pid"),
            "-s": "malloc,256m",
        }
        # -F: in the foreground, a child of this process like the others.
        self._spawn("varnish", [self._tool("varnishd"), "-F", *_flatten(options)])

    def _start_manage(self, *args):
        return subprocess.Popen(
            [str(self._python()), "manage.py", *args],
            cwd=self.root,
            env=self.environ(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    @staticmethod
    def _finish_manage(process):
        output, _ = process.communicate()
        if process.returncode:
            tail = "\n".join(output.splitlines()[-40:])
            raise StackError(f"{' '.join(process.args[1:])} failed ({process.returncode}):\n{tail}")
        return output

    def _spawn(self, name, command):
        """Start `command` in a session of its own (so a Ctrl-C in the caller spares it)."""
        log = open(self.log_dir / f"{name}.log", "ab")
        with log:
            self._procs[name] = subprocess.Popen(
                command,
                cwd=self.root,
                env=self.environ(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _stop(self, name, signum, timeout):
        pid = self._pid(name)
        proc = self._procs.pop(name, None)
        if pid is None and proc is not None and proc.poll() is None:
            pid = proc.pid  # started, but killed before it wrote its pidfile
        if pid is not None:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass
            if not self._wait_exit(pid, proc, timeout):
                # It ignored the signal: end its whole session (master and workers).
                _kill_group(pid)
                if not self._wait_exit(pid, proc, 5):
                    raise StackError(f"{name} (pid {pid}) did not exit")
        (self.run_dir / self._PIDFILES[name]).unlink(missing_ok=True)

    def _pid(self, name):
        """Return the PID in `name`'s pidfile if that process is alive and is `name`."""
        try:
            pid = int((self.run_dir / self._PIDFILES[name]).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if _is_running(pid, self._COMMANDS[name]) else None

    @staticmethod
    def _wait_exit(pid, proc, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # Our own child must be reaped (wait), or it lingers as a zombie.
            if proc is not None and proc.pid == pid:
                if proc.poll() is not None:
                    return True
            elif not _is_running(pid):
                return True
            time.sleep(0.05)
        return False

    def _wait_for_200(self, url, deadline, what):
        while True:
            self._check_alive(what)
            try:
                with _HTTP.open(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise StackError(f"{url} ({what}) did not answer 200 in time\n{self.log_tail()}")
            time.sleep(0.1)

    def _wait_for_workers(self, deadline, replacing=()):
        """Wait until uWSGI reports its workers accepting, none of them in `replacing`."""
        while True:
            self._check_alive("uWSGI")
            try:
                workers = self.stats()["workers"]
                if len(workers) == int(self.environ()["UWSGI_PROCESSES"]) and all(
                    w["accepting"] and w["pid"] not in replacing for w in workers
                ):
                    return
            except (OSError, ValueError, KeyError):
                pass
            if time.monotonic() > deadline:
                raise StackError(f"uWSGI's workers were not ready in time\n{self.log_tail()}")
            time.sleep(0.1)

    def _check_alive(self, what):
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                raise StackError(
                    f"{name} exited with status {proc.returncode} while waiting for {what}\n{self.log_tail()}"
                )

    def _check_tools(self):
        self._tool("nginx")
        self._tool("varnishd")
        for path in (self._venv_bin("uwsgi"), self._python()):
            if not path.exists():
                raise StackError(f"{path} is missing: build the venv first (make venv)")

    def _tool(self, name):
        path = shutil.which(name, path=SBIN_PATH)
        if path is None:
            raise StackError(f"{name} is not installed: `make stack` installs it (apt-get install nginx varnish)")
        return path

    def _check_free_ports(self):
        for port in (self.varnish_port, self.nginx_port):
            with socket.socket() as sock:
                # As the servers do, so that connections in TIME_WAIT do not count.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    raise StackError(
                        f"127.0.0.1:{port} is in use: by another stack (`python deploy/stack.py stop`), "
                        "or by the service Debian's package started (`sudo systemctl disable --now varnish`); "
                        "or pick other ports"
                    ) from None
        socket_path = self.run_dir / "uwsgi.sock"
        if len(str(socket_path)) > _MAX_SOCKET_PATH:
            raise StackError(f"{socket_path} is too long for a unix socket: use a shorter run folder")

    def _prepare_run_dir(self):
        for folder in (self.log_dir, self.conf_dir, self.run_dir / "nginx"):
            folder.mkdir(parents=True, exist_ok=True)
        # Keep the run folder out of git wherever it is.
        (self.run_dir / ".gitignore").write_text("*\n")
        for log in self.log_dir.glob("*.log"):
            log.unlink()

    def _venv_bin(self, name):
        return self.root / ".venv" / "bin" / name

    def _python(self):
        venv_python = self._venv_bin("python")
        return venv_python if venv_python.exists() else Path(sys.executable)

    @staticmethod
    def _write(path, text):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _is_running(pid, command=None):
    """Tell whether `pid` is alive (not a zombie) and, if given, runs `command`."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rpartition(")")[2].split()[0]
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            argv0 = cmdline.read().split(b"\0")[0].decode(errors="replace")
    except (OSError, IndexError):
        return False
    return state != "Z" and (command is None or command in argv0)


def _flatten(options):
    """Turn {"-a": "x", "-b": "y"} into ["-a", "x", "-b", "y"]."""
    return [part for option in options.items() for part in option]


def _kill_group(pid):
    """SIGKILL `pid` and, when it leads its own process group, its workers with it."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run the production stack on loopback (see the module docstring).")
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--run-dir", default=ROOT / ".stack", type=Path, help="default: <checkout>/.stack")
    parser.add_argument("--varnish-port", default=PRODUCTION_VARNISH_PORT, type=int)
    parser.add_argument("--nginx-port", default=PRODUCTION_NGINX_PORT, type=int)
    parser.add_argument(
        "--processes",
        default=int(os.environ.get("UWSGI_PROCESSES", 2)),
        type=int,
        help="uWSGI workers (default: $UWSGI_PROCESSES or 2)",
    )
    parser.add_argument("--skip-manage", action="store_true", help="skip migrate, createcachetable, collectstatic")
    parser.add_argument("--timeout", default=60, type=float, help="seconds to wait for /healthz")
    args = parser.parse_args(argv)
    stack = Stack(ROOT, args.run_dir, args.varnish_port, args.nginx_port, args.processes)
    try:
        if args.command == "start":
            seconds = stack.start(manage=not args.skip_manage, timeout=args.timeout)
            print(f"stack up in {seconds:.1f} s (logs in {stack.log_dir})")
            print(f"  shop, through Varnish:  {stack.url('/')}")
            print(f"  Nginx, behind it:       {stack.nginx_url}/")
            print("  stop it:                python deploy/stack.py stop  (or make stack-down)")
        elif args.command == "stop":
            stack.stop()
            print("stack stopped")
        else:
            return _print_status(stack)
    except StackError as error:
        print(f"stack: {error}", file=sys.stderr)
        return 1
    return 0


def _print_status(stack):
    pids = stack.status()
    for name, pid in pids.items():
        print(f"{name:8} {'pid ' + str(pid) if pid else 'not running'}")
    if not all(pids.values()):
        return 1
    try:
        with _HTTP.open(stack.url("/healthz"), timeout=5) as response:
            print(f"{stack.url('/healthz')} -> {response.status}")
    except (urllib.error.URLError, OSError) as error:
        print(f"{stack.url('/healthz')} -> {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
