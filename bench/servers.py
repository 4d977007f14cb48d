"""The servers the benchmark starts beside the stack, each stopped by its own PID.

    BenchStack      deploy/stack.py's Stack, with the bench settings module and optional edits
    AppServer       uWSGI or gunicorn alone, over HTTP on a loopback port (the A/B of app servers)
    BuiltinVarnish  Varnish with only a backend in its VCL: the floor under a Varnish HIT

Memcached, free ports and the process base class are harness's (harness/servers.py, process.py).
"""

import re
import subprocess
from pathlib import Path

from deploy.stack import Stack
from harness.process import ROOT, Process, StackError, tool
from harness.servers import Varnish

_STORE_SETTINGS = "DJANGO_SETTINGS_MODULE=config.settings"
_BENCH_SETTINGS = "DJANGO_SETTINGS_MODULE=bench.settings"
# The recycling options of shop.ini that the "no recycling" RSS run removes.
_RECYCLING_LINES = re.compile(r"^(max-requests|reload-on-rss)\s*=.*\n", re.MULTILINE)
_MAX_REQUESTS_LINE = re.compile(r"^max-requests\s*=.*\n", re.MULTILINE)


class BenchStack(Stack):
    """The production stack from deploy/, run with DJANGO_SETTINGS_MODULE=bench.settings.

    shop.ini sets `env = DJANGO_SETTINGS_MODULE=config.settings`, and uWSGI's `env` overrides
    the inherited environment (and an ini option wins over UWSGI_* variables), so the rendered
    copy is edited instead: that one line; with `recycle=False` the max-requests and
    reload-on-rss lines are removed, and with `max_requests=N` max-requests is set to N.
    Every other line runs as shipped.
    """

    def __init__(self, *args, recycle=True, max_requests=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.recycle = recycle
        self.max_requests = max_requests
        # Where the app logs its renders (bench/app.py), when the environment asks it to.
        self.render_log = Path(self.env["BENCH_RENDER_LOG"]) if self.env.get("BENCH_RENDER_LOG") else None

    def render(self):
        super().render()
        # Every rendered shop.ini (one per app node when the stack has several).
        inis = sorted(self.conf_dir.rglob("shop.ini"))
        if not inis:
            raise StackError(f"no rendered shop.ini under {self.conf_dir}; update bench/servers.py")
        for ini in inis:
            text = ini.read_text()
            edited = text.replace(f"env = {_STORE_SETTINGS}", f"env = {_BENCH_SETTINGS}")
            if edited == text:
                raise StackError(f"{ini}: the DJANGO_SETTINGS_MODULE line was not found; update bench/servers.py")
            if not self.recycle:
                edited = _RECYCLING_LINES.sub("", edited)
            elif self.max_requests:
                edited, found = _MAX_REQUESTS_LINE.subn(f"max-requests = {self.max_requests}\n", edited)
                if not found:
                    raise StackError(f"{ini}: no max-requests line to change; update bench/servers.py")
            ini.write_text(edited)

    def environ(self):
        env = super().environ()
        env["DJANGO_SETTINGS_MODULE"] = "bench.settings"  # manage.py steps and bench helpers
        return env

    def respawns(self):
        """Return how many workers uWSGI started after the first ones (max-requests, reload-on-rss)."""
        loads = sum(count_app_loads(log) for log in self.log_dir.rglob("uwsgi.log"))
        return loads - self.processes * getattr(self, "nodes", 1)

    def varnish_counter(self, name):
        """Return one of this stack's Varnish counters, e.g. MAIN.n_object (varnishstat -1)."""
        varnishstat = tool("varnishstat")
        answer = subprocess.run([varnishstat, "-n", str(self.run_dir / "varnish"), "-1", "-f", name],
                                capture_output=True, text=True, timeout=10)
        for line in answer.stdout.splitlines():
            parts = line.split()
            if parts and parts[0] == name:
                return int(parts[1])
        raise StackError(f"varnishstat has no {name}: {answer.stdout[-300:]}{answer.stderr[-300:]}")

    def worker_rss_kib(self):
        """Return the resident memory of each uWSGI worker (KiB), from /proc."""
        return [rss for pid in self.worker_pids() if (rss := process_rss_kib(pid)) is not None]


def count_app_loads(log_path):
    """Count the workers that loaded the app, from uWSGI's "WSGI app 0 ... ready" log lines."""
    try:
        return sum(1 for line in Path(log_path).read_text(errors="replace").splitlines()
                   if line.startswith("WSGI app 0 ") and " ready in " in line)
    except OSError:
        return 0


def process_rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class BuiltinVarnish(Varnish):
    """Varnish whose VCL names a backend and nothing else, in front of a stack's Nginx.

    Varnish's builtin.vcl then decides everything (it caches the product page: no cookie, no
    Set-Cookie, a public s-maxage), so a HIT here is the least a Varnish HIT costs on this
    machine, whatever a VCL adds. Same storage and http_gzip_support as deploy/stack.py.
    """

    def __init__(self, run_dir, port, nginx_port):
        run_dir = Path(run_dir)
        super().__init__(run_dir / "varnish-builtin", port, run_dir / "builtin-only.vcl",
                         run_dir / "varnish-builtin.log", name="varnish-builtin")  # fmt: skip
        self.nginx_port = nginx_port

    @property
    def varnish_url(self):
        return self.url

    def start(self, timeout=30):
        self.vcl.parent.mkdir(parents=True, exist_ok=True)
        self.vcl.write_text(
            "vcl 4.1;\n# The backend, and nothing else: Varnish's builtin.vcl decides the rest.\n"
            f'backend nginx {{ .host = "127.0.0.1"; .port = "{self.nginx_port}"; }}\n'
        )
        return super().start(timeout)


class AppServer(Process):
    """uWSGI or gunicorn alone on an HTTP port, with the bench settings and `workers` workers."""

    def __init__(self, kind, log_path, port, env, workers=2):
        super().__init__(log_path, name=kind)
        self.kind = kind
        self.port = port
        self.env = env
        self.workers = workers

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=60):
        venv = ROOT / ".venv" / "bin"
        env = {k: v for k, v in self.env.items() if not k.startswith("UWSGI_")}
        env["DJANGO_SETTINGS_MODULE"] = "bench.settings"
        if self.kind == "uwsgi":
            # The process options of deploy/uwsgi/shop.ini, over HTTP instead of the uwsgi socket.
            command = [
                str(venv / "uwsgi"), "--strict", "--master", "--need-app",
                "--module", "config.wsgi:application", "--env", "DJANGO_SETTINGS_MODULE=bench.settings",
                "--http-socket", f"127.0.0.1:{self.port}", "--processes", str(self.workers),
                "--single-interpreter", "--enable-threads", "--lazy-apps", "--thunder-lock",
                "--buffer-size", "32768", "--harakiri", "30", "--die-on-term", "--disable-logging",
                "--chdir", str(ROOT),
                # Like gunicorn's sync workers, close after each answer, and say so: without the
                # header wrk counts every close as a read error.
                "--add-header", "Connection: close",
            ]
        else:
            env["BENCH_BIND"] = f"127.0.0.1:{self.port}"
            env["BENCH_WORKERS"] = str(self.workers)
            command = [str(venv / "gunicorn"), "-c", str(ROOT / "bench" / "gunicorn.conf.py")]
        self.spawn(command, env=env)
        try:
            self.wait_for_200(self.url + "/healthz", timeout)
        except StackError:
            self.stop()
            raise
