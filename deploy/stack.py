"""Run the production stack on loopback, from the very files in deploy/.

    browser -> Varnish :6081 -> Nginx :8081 -> uWSGI (unix socket) -> Django

From the checkout, once the venv is built (`make stack` does the same and installs Nginx
and Varnish when missing):

    python -m deploy.stack start     # prepare Django, start the servers, wait for /healthz
    python -m deploy.stack status    # which servers run, and whether /healthz answers
    python -m deploy.stack stop      # stop them by PID; safe to repeat
    python -m deploy.stack start --varnish-port 7081 --nginx-port 7082 --run-dir /tmp/s
    python -m deploy.stack start --nodes 3   # three app nodes behind one Varnish (below)
    python -m deploy.stack start --seed-demo 500   # demo mode: seed an empty catalog, make the demo admin

`start` first runs `manage.py migrate --noinput`, `createcachetable` and `collectstatic
--noinput` (`--skip-manage` skips them) with the environment the servers get: yours, so
DATABASE_URL, CACHE_URL and the rest pass through; SHOP_DEMO=1 unless you set it;
VARNISH_URL pointing at this stack's Varnish; UWSGI_PROCESSES, the worker count that
deploy/uwsgi/shop.ini reads. With `--seed-demo N` (`make stack` passes it) and SHOP_DEMO on, it
then seeds N demo products if the catalog has none (`seed_demo --if-empty`) and makes the demo
admin account (`ensure_demo_admin`), whose login it prints with the URLs.

From Python, e.g. in a pytest fixture (`from deploy.stack import Stack`, from the checkout;
deploy/ needs no __init__.py). Each server is a harness.process.Process with a pidfile, the
Varnish a harness.servers.Varnish; StackError is harness.process's:

    stack = Stack(root, run_dir, varnish_port=6081, nginx_port=8081, processes=2,
                  env={"DATABASE_URL": "..."})
    with stack:                         # start() ... stop()
        urlopen(stack.url("/healthz"))  # through Varnish; stack.nginx_url skips it
        stack.touch_reload(wait=True)   # chain reload, one worker at a time
        stack.worker_pids()             # from uWSGI's stats socket; stack.stats() has it all
        stack.stop_uwsgi()              # fault tests: Nginx answers 502, Varnish graces
        stack.start_uwsgi()
        stack.manage("seed_demo")       # manage.py with the stack's environment

Several app nodes (`nodes=3`, `--nodes 3`, `make stack NODES=3`): node i is its own Nginx
and uWSGI, from the same shop.conf and shop.ini, listening on 127.0.0.(1+i):<nginx port>
with a run folder of its own; one Varnish runs cluster.vcl, whose director spreads the
requests over them. All nodes share the database and the Django cache of the environment
(DATABASE_URL, CACHE_URL; the default database cache table is shared with the database),
and Django's purges go to the one Varnish. docs/scale-out.md is the guide for real machines.

    with Stack(root, run_dir, nodes=3, env={"CACHE_URL": "redis://127.0.0.1:6379/1"}) as stack:
        stack.node(2).url               # http://127.0.0.3:8081, that node's Nginx
        stack.stop_node(2)              # its Nginx and uWSGI, by PID; Varnish's probe notices
        stack.start_node(2)             # back; the probe lets it rejoin
        stack.varnishadm("backend.list")

How the files are rendered: each one is copied into <run>/conf/ with these replacements,
in one pass, and no others, so the stack runs what production runs:

    /srv/shop      -> the checkout          6081 -> varnish_port
    /run/shop      -> the run folder        8081 -> nginx_port
    /var/log/shop  -> <run>/logs

With several nodes, each node's shop.ini and shop.conf get the node's run and log folders,
and `listen 127.0.0.1:8081` becomes `listen 127.0.0.(1+i):<nginx port>`; cluster.vcl's
backends become node1..nodeN at those addresses (the first backend block, repeated), and
its add_backend lines follow.

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

With several nodes, node i keeps its socket, pidfiles and Nginx folders in <run>/node<i>/,
its rendered files in conf/node<i>/ and its logs in logs/node<i>/; Varnish's stay where
they are.
"""

import argparse
import itertools
import json
import os
import pwd
import re
import socket
import subprocess
import sys
import time
import urllib.error
from dataclasses import dataclass
from pathlib import Path

from harness.process import HTTP, ROOT, Process, StackError, answers_200, log_tail, port_is_free, tool
from harness.servers import Varnish

# The production values in deploy/ that rendering replaces.
PRODUCTION_PATHS = ("/srv/shop", "/run/shop", "/var/log/shop")
PRODUCTION_VARNISH_PORT = 6081
PRODUCTION_NGINX_PORT = 8081
# shop.conf's listen address, which each app node of a multi-node stack gets its own of.
PRODUCTION_LISTEN = "127.0.0.1:8081"

# cluster.vcl's backends and the lines that add them to the director (see render_backends).
_BACKEND_BLOCK = re.compile(r"^backend node\d+ \{\n.*?^\}\n", re.MULTILINE | re.DOTALL)
_ADD_BACKEND_LINE = re.compile(r"^([ \t]*\w+)\.add_backend\(node\d+\);\n", re.MULTILINE)

# shop.ini lines that only make sense when a root-started uWSGI drops to www-data.
_USER_SWITCH_LINES = re.compile(r"^(uid|gid|chown-socket)\s*=.*\n", re.MULTILINE)

# The longest path a unix socket may have (sun_path is 108 bytes on Linux).
_MAX_SOCKET_PATH = 107

_INSTALL_HINT = "`make stack` installs it (apt-get install nginx varnish)"

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


def render(text, replacements):
    """Return `text` with each production value in `replacements` replaced, in one pass."""
    pattern = "|".join(rf"(?<!\d){re.escape(old)}(?!\d)" if old.isdigit() else re.escape(old) for old in replacements)
    return re.sub(pattern, lambda match: replacements[match.group(0)], text)


def render_backends(vcl, addresses):
    """Return cluster.vcl with one backend per address, node1..nodeN, all in its director.

    The first `backend nodeN { ... }` block is the pattern of every node (its .host replaced),
    and the director's `add_backend` lines are written anew, one per node.
    """
    blocks = list(_BACKEND_BLOCK.finditer(vcl))
    adds = list(_ADD_BACKEND_LINE.finditer(vcl))
    if not blocks or not adds:
        raise StackError("cluster.vcl: no `backend nodeN {` blocks or no `.add_backend(nodeN);` lines")
    for found in (blocks, adds):
        gaps = [vcl[a.end() : b.start()] for a, b in itertools.pairwise(found)]
        if any(gap.strip() for gap in gaps):
            raise StackError("cluster.vcl: the backends, and their add_backend lines, must each stand together")
    pattern, director = blocks[0].group(0), adds[0].group(1)
    backends = "\n".join(
        re.sub(r'\.host = "[^"]*";', f'.host = "{address}";', re.sub(r"^backend node\d+", f"backend node{i}", pattern))
        for i, address in enumerate(addresses, start=1)
    )
    add_lines = "".join(f"{director}.add_backend(node{i});\n" for i in range(1, len(addresses) + 1))
    # The later span first, so the earlier one's offsets still hold.
    spans = sorted([(blocks[0].start(), blocks[-1].end(), backends), (adds[0].start(), adds[-1].end(), add_lines)])
    for start, end, text in reversed(spans):
        vcl = vcl[:start] + text + vcl[end:]
    return vcl


@dataclass(frozen=True)
class AppNode:
    """One app node of a stack: an Nginx and a uWSGI, with their own address and folders."""

    number: int  # 1, 2, ...: backend node<number> in cluster.vcl
    address: str  # where its Nginx listens
    port: int
    run_dir: Path  # socket, pidfiles, reload file, Nginx's temp folders
    conf_dir: Path  # rendered uwsgi/shop.ini, nginx/*
    log_dir: Path
    prefix: str = ""  # of its server names in Stack.status(): "" alone, "node2." among several

    @property
    def name(self):
        return f"node{self.number}"

    @property
    def url(self):
        """Return the URL of this node's Nginx, which Varnish's director reaches."""
        return f"http://{self.address}:{self.port}"

    @property
    def reload_file(self):
        return self.run_dir / "reload"

    def stats(self):
        """Return what this node's uWSGI stats socket reports: workers, their PIDs, requests, RSS."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.run_dir / "stats.sock"))
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return json.loads(b"".join(chunks))


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
        nodes=1,
    ):
        if int(nodes) < 1:
            raise ValueError(f"nodes must be 1 or more, not {nodes}")
        self.root = Path(root).resolve()
        self.run_dir = Path(run_dir).resolve() if run_dir else self.root / ".stack"
        self.varnish_port = int(varnish_port)
        self.nginx_port = int(nginx_port)
        self.processes = int(processes)
        self.env = dict(env or {})
        self.nodes = int(nodes)
        self.deploy_dir = self.root / "deploy"
        self.conf_dir = self.run_dir / "conf"
        self.log_dir = self.run_dir / "logs"
        self.app_nodes = self._layout(self.nodes)
        # The first node's; touch_reload() touches every node's.
        self.reload_file = self.app_nodes[0].reload_file
        self.started_in = None
        self.demo_login = ""
        self._servers = {}  # name -> Process, made on first use (see _server)

    # --- addresses ---------------------------------------------------------------------

    @property
    def varnish_url(self):
        return f"http://127.0.0.1:{self.varnish_port}"

    @property
    def nginx_url(self):
        """Return the URL of the first node's Nginx (the only one, unless nodes > 1)."""
        return self.app_nodes[0].url

    @property
    def vcl_file(self):
        """Return the rendered VCL that Varnish loads: cluster.vcl when there are several nodes."""
        return self.conf_dir / "varnish" / ("cluster.vcl" if self.nodes > 1 else "default.vcl")

    def node(self, number):
        """Return app node `number`, counted from 1 as cluster.vcl's backends are."""
        if not 1 <= number <= self.nodes:
            raise ValueError(f"node {number}: this stack has nodes 1 to {self.nodes}")
        return self.app_nodes[number - 1]

    def url(self, path="/"):
        """Return the URL of `path` through Varnish, the way a browser reaches the shop."""
        return self.varnish_url + path

    # --- start and stop ----------------------------------------------------------------

    def start(self, manage=True, timeout=60, demo_products=None):
        """Render the files, prepare Django, start every server; return the seconds it took.

        `timeout` bounds the wait for /healthz, after the manage.py steps. With `manage` and
        `demo_products`, the demo is prepared too (prepare_demo); its login is in `demo_login`.
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
            if demo_products is not None:
                # Before the servers start, so no page is ever cached from an empty catalog.
                self.demo_login = self.prepare_demo(demo_products)
        deadline = time.monotonic() + timeout
        try:
            for node in self.app_nodes:
                self._spawn_uwsgi(node)
                self._start_nginx(node)
            # Varnish probes the backends as soon as it starts: start it once every Nginx
            # and uWSGI answer, so that its first probes already find them healthy.
            for node in self.app_nodes:
                self._wait_for_200(node.url + "/healthz", deadline, f"Nginx -> uWSGI -> Django ({node.name})")
            self._start_varnish()
            self._wait_for_200(self.url("/healthz"), deadline, "Varnish -> Nginx -> uWSGI -> Django")
            self._wait_for_workers(deadline)
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - began
        return self.started_in

    def stop(self, timeout=20):
        """Stop every server by its PID, front to back, and wait for each to exit.

        Nodes that an earlier start with another node count left in the run folder are
        stopped too, so `python -m deploy.stack stop` needs no --nodes.
        """
        # Varnish first, so no new request reaches a backend that is going away.
        self._server("varnish").stop(timeout)
        for node in self._nodes_in_run_dir():
            self._stop_node_servers(node, timeout)

    def start_uwsgi(self, wait=True, timeout=60):
        """Start every node's uWSGI from its shop.ini; with `wait`, until every worker accepts."""
        for node in self.app_nodes:
            self._spawn_uwsgi(node)
        if wait:
            self._wait_for_workers(time.monotonic() + timeout)

    def stop_uwsgi(self, timeout=20):
        """Stop every node's uWSGI: SIGTERM, which die-on-term turns into a shutdown (not a reload)."""
        for node in self.app_nodes:
            self._server(node.prefix + "uwsgi").stop(timeout)

    def stop_node(self, number, timeout=20):
        """Stop one app node, its Nginx then its uWSGI, by PID; Varnish's probe notices by itself."""
        self._stop_node_servers(self.node(number), timeout)

    def start_node(self, number, timeout=60):
        """Start one app node again and wait until it answers /healthz with every worker ready.

        Varnish is not told: its probe finds the node healthy again after a few passes.
        """
        node = self.node(number)
        deadline = time.monotonic() + timeout
        self._spawn_uwsgi(node)
        self._start_nginx(node)
        self._wait_for_200(node.url + "/healthz", deadline, f"Nginx -> uWSGI -> Django ({node.name})")
        self._wait_for_workers(deadline, nodes=[node])

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()

    # --- while running -----------------------------------------------------------------

    def status(self):
        """Return {server: PID or None} from the pidfiles in the run folder.

        One node: {"uwsgi", "nginx", "varnish"}; several: "node1.uwsgi", "node1.nginx", ...
        """
        names = [node.prefix + kind for node in self._nodes_in_run_dir() for kind in ("uwsgi", "nginx")]
        return {name: self._pid(name) for name in [*names, "varnish"]}

    def touch_reload(self, wait=False, timeout=60, number=None):
        """Touch each node's reload file (a chain reload); with `wait`, until no old worker is left.

        With `wait`, the nodes reload one after the other, each once the previous one is done.
        `number` reloads that node only.
        """
        for node in [self.node(number)] if number is not None else self.app_nodes:
            old_pids = set(self.worker_pids(node)) if wait else set()
            # uWSGI compares whole-second mtimes: step past the last touch, or it is missed.
            last = node.reload_file.stat().st_mtime if node.reload_file.exists() else 0
            mtime = max(time.time(), last + 1)
            node.reload_file.touch()
            os.utime(node.reload_file, (mtime, mtime))
            if wait:
                self._wait_for_workers(time.monotonic() + timeout, replacing=old_pids, nodes=[node])

    def stats(self):
        """Return what the first node's uWSGI stats socket reports (node(i).stats() for the others)."""
        return self.app_nodes[0].stats()

    def worker_pids(self, node=None):
        """Return the PIDs of uWSGI's workers: of `node`, or of every node."""
        nodes = [node] if node is not None else self.app_nodes
        return [worker["pid"] for each in nodes for worker in each.stats()["workers"]]

    def varnishadm(self, *args):
        """Run a varnishadm command on this stack's Varnish (e.g. "backend.list"); return its output."""
        command = [tool("varnishadm", _INSTALL_HINT), "-n", str(self.run_dir / "varnish"), *args]
        answer = subprocess.run(command, capture_output=True, text=True, timeout=15)
        if answer.returncode:
            raise StackError(f"varnishadm {' '.join(args)} failed: {answer.stdout}{answer.stderr}")
        return answer.stdout

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

    def demo_mode(self):
        """Tell whether the servers run as the demo (SHOP_DEMO on, as django-environ reads it)."""
        return self.environ().get("SHOP_DEMO", "").strip().lower() in {"1", "true", "yes", "y", "on", "ok"}

    def prepare_demo(self, products):
        """In demo mode, seed an empty catalog and make the demo admin; return its login ("" otherwise).

        A catalog with products is left as it is, and without SHOP_DEMO nothing is done: a stack
        on a real database never gets demo products or the demo account.
        """
        if not self.demo_mode():
            return ""
        self.manage("seed_demo", "--products", str(products), "--if-empty", "-v0")
        return self.manage("ensure_demo_admin", "--site", self.varnish_url).strip()

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
        if self.nodes > 1:
            # So that a node's Nginx also answers when asked by its own address.
            addresses = [node.address for node in self.app_nodes]
            env.setdefault("ALLOWED_HOSTS", ",".join(["127.0.0.1", "localhost", *addresses]))
        env["VARNISH_URL"] = self.varnish_url
        env["UWSGI_PROCESSES"] = str(self.processes)
        env.update(self.env)
        return env

    def log_tail(self, lines=25):
        """Return the last `lines` lines of every log, for error messages."""
        return log_tail(sorted(self.log_dir.rglob("*.log")), lines)

    # --- rendering ---------------------------------------------------------------------

    def render(self):
        """Write the deploy files for this run folder and these ports into <run>/conf/."""
        ports = {
            str(PRODUCTION_VARNISH_PORT): str(self.varnish_port),
            str(PRODUCTION_NGINX_PORT): str(self.nginx_port),
        }
        vcl_files = sorted((self.deploy_dir / "varnish").glob("*.vcl"))
        if self.vcl_file.name not in {path.name for path in vcl_files}:
            raise StackError(f"{self.deploy_dir / 'varnish' / self.vcl_file.name} is missing")
        varnish_replacements = {
            "/srv/shop": str(self.root),
            "/run/shop": str(self.run_dir),
            "/var/log/shop": str(self.log_dir),
            **ports,
        }
        for source in vcl_files:
            text = render(source.read_text(), varnish_replacements)
            if source.name == "cluster.vcl" and self.nodes > 1:
                text = render_backends(text, [node.address for node in self.app_nodes])
            self._write(self.conf_dir / "varnish" / source.name, text)
        for node in self.app_nodes:
            self._render_node(node, ports)

    def _render_node(self, node, ports):
        """Write one node's shop.ini, shop.conf, conf.d/ and Nginx main file into its conf folder."""
        replacements = {
            "/srv/shop": str(self.root),
            "/run/shop": str(node.run_dir),
            "/var/log/shop": str(node.log_dir),
            PRODUCTION_LISTEN: f"{node.address}:{self.nginx_port}",
            **ports,
        }
        sources = {
            "uwsgi/shop.ini": self.deploy_dir / "uwsgi" / "shop.ini",
            "nginx/shop.conf": self.deploy_dir / "nginx" / "shop.conf",
            **{f"nginx/conf.d/{p.name}": p for p in (self.deploy_dir / "nginx" / "conf.d").glob("*.conf")},
        }
        for target, source in sources.items():
            original = source.read_text()
            if target == "nginx/shop.conf" and self.nodes > 1 and f"listen {PRODUCTION_LISTEN};" not in original:
                raise StackError(f"{source}: no `listen {PRODUCTION_LISTEN};` to give each node its address")
            text = render(original, replacements)
            if target == "uwsgi/shop.ini":
                text = _USER_SWITCH_LINES.sub("", text)
            self._write(node.conf_dir / target, text)
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
        self._write(
            node.conf_dir / "nginx" / "nginx.conf",
            NGINX_MAIN_CONF.format(user=user, run=node.run_dir, logs=node.log_dir, conf=node.conf_dir / "nginx"),
        )

    # --- helpers -----------------------------------------------------------------------

    _PIDFILES = {"uwsgi": "uwsgi.pid", "nginx": "nginx.pid", "varnish": "varnish.pid"}
    # What /proc/<pid>/cmdline must name before a signal is sent (Process.program).
    _PROGRAMS = {"uwsgi": "uwsgi", "nginx": "nginx"}

    def _server(self, name):
        """Return the Process of server `name`: "varnish", "uwsgi", "nginx" or "node2.uwsgi"."""
        if name not in self._servers:
            kind = name.rpartition(".")[2]
            log, pidfile = self._server_file(name, f"{kind}.log"), self._server_file(name, self._PIDFILES[kind])
            if kind == "varnish":
                self._servers[name] = Varnish(
                    self.run_dir / "varnish", self.varnish_port, self.vcl_file, log, name=name, pidfile=pidfile
                )
            else:
                self._servers[name] = Process(log, name=name, pidfile=pidfile, program=self._PROGRAMS[kind])
        return self._servers[name]

    def _layout(self, count):
        """Return the app nodes of a `count`-node stack in this run folder.

        One node keeps today's layout: 127.0.0.1, files straight in the run, conf and log
        folders. Several get 127.0.0.2, 127.0.0.3, ... and folders of their own.
        """
        if count == 1:
            return [AppNode(1, "127.0.0.1", self.nginx_port, self.run_dir, self.conf_dir, self.log_dir)]
        return [self._multi_node(number) for number in range(1, count + 1)]

    def _multi_node(self, number):
        name = f"node{number}"
        return AppNode(
            number,
            f"127.0.0.{1 + number}",
            self.nginx_port,
            self.run_dir / name,
            self.conf_dir / name,
            self.log_dir / name,
            prefix=f"{name}.",
        )

    def _nodes_in_run_dir(self):
        """Return this stack's nodes, plus any that a start with another node count left running."""
        nodes = list(self.app_nodes)
        others = [*self._layout(1)] if self.nodes > 1 else []
        for folder in sorted(self.run_dir.glob("node*")):
            if folder.name[4:].isdigit() and (self.nodes == 1 or int(folder.name[4:]) > self.nodes):
                others.append(self._multi_node(int(folder.name[4:])))
        for node in others:
            if any(self._pid(node.prefix + kind) for kind in ("uwsgi", "nginx")):
                nodes.append(node)
        return nodes

    def _spawn_uwsgi(self, node):
        ini = node.conf_dir / "uwsgi" / "shop.ini"
        self._spawn(node.prefix + "uwsgi", [str(self._venv_bin("uwsgi")), "--ini", str(ini)])

    def _spawn(self, name, command):
        self._server(name).spawn(command, env=self.environ(), cwd=self.root)

    def _stop_node_servers(self, node, timeout):
        # Nginx: SIGTERM is its fast shutdown.
        self._server(node.prefix + "nginx").stop(timeout)
        # uWSGI: SIGTERM, which die-on-term turns into a shutdown (not a reload).
        self._server(node.prefix + "uwsgi").stop(timeout)

    def _start_nginx(self, node):
        options = {
            "-p": f"{node.run_dir}/nginx/",  # the prefix: relative paths start here
            "-c": str(node.conf_dir / "nginx" / "nginx.conf"),
            "-e": str(node.log_dir / "nginx-error.log"),  # not /var/log/nginx, even before -c is read
        }
        self._spawn(node.prefix + "nginx", [tool("nginx", _INSTALL_HINT), *_flatten(options)])

    def _start_varnish(self):
        # harness.servers.Varnish: in the foreground, its own working folder, -P its pidfile,
        # http_gzip_support off as deploy/systemd/varnish.service.d/shop.conf sets it.
        varnish = self._server("varnish")
        self._spawn("varnish", varnish.argv())

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

    def _pid(self, name):
        """Return the PID in `name`'s pidfile if that process is alive and is `name`."""
        return self._server(name).file_pid()

    def _server_file(self, name, filename):
        """Return `filename` in the folder of server `name`: a node's run or log folder, or the stack's."""
        node_name = name.rpartition(".")[0]
        suffix = Path(filename).suffix
        if not node_name:
            return (self.log_dir if suffix == ".log" else self.run_dir) / filename
        node = self._multi_node(int(node_name[4:]))
        return (node.log_dir if suffix == ".log" else node.run_dir) / filename

    def _wait_for_200(self, url, deadline, what):
        while True:
            self._check_alive(what)
            if answers_200(url):
                return
            if time.monotonic() > deadline:
                raise StackError(f"{url} ({what}) did not answer 200 in time\n{self.log_tail()}")
            time.sleep(0.1)

    def _wait_for_workers(self, deadline, replacing=(), nodes=None):
        """Wait until each node's uWSGI reports its workers accepting, none of them in `replacing`."""
        expected = int(self.environ()["UWSGI_PROCESSES"])
        for node in nodes or self.app_nodes:
            while True:
                self._check_alive("uWSGI")
                try:
                    workers = node.stats()["workers"]
                    if len(workers) == expected and all(w["accepting"] and w["pid"] not in replacing for w in workers):
                        break
                except (OSError, ValueError, KeyError):
                    pass
                if time.monotonic() > deadline:
                    raise StackError(f"uWSGI's workers ({node.name}) were not ready in time\n{self.log_tail()}")
                time.sleep(0.1)

    def _check_alive(self, what):
        for name, server in self._servers.items():
            if server.exit_status() is not None:
                raise StackError(
                    f"{name} exited with status {server.exit_status()} while waiting for {what}\n{self.log_tail()}"
                )

    def _check_tools(self):
        tool("nginx", _INSTALL_HINT)
        tool("varnishd", _INSTALL_HINT)
        for path in (self._venv_bin("uwsgi"), self._python()):
            if not path.exists():
                raise StackError(f"{path} is missing: build the venv first (make venv)")

    def _check_free_ports(self):
        addresses = [("127.0.0.1", self.varnish_port), *((node.address, node.port) for node in self.app_nodes)]
        for address, port in addresses:
            if not port_is_free(address, port):
                raise StackError(
                    f"{address}:{port} is in use: by another stack (`python -m deploy.stack stop`), "
                    "or by the service Debian's package started (`sudo systemctl disable --now varnish`); "
                    "or pick other ports"
                )
        for node in self.app_nodes:
            socket_path = node.run_dir / "uwsgi.sock"
            if len(str(socket_path)) > _MAX_SOCKET_PATH:
                raise StackError(f"{socket_path} is too long for a unix socket: use a shorter run folder")

    def _prepare_run_dir(self):
        folders = [self.log_dir, self.conf_dir]
        for node in self.app_nodes:
            folders += [node.log_dir, node.conf_dir, node.run_dir / "nginx"]
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
        # Keep the run folder out of git wherever it is.
        (self.run_dir / ".gitignore").write_text("*\n")
        for log in self.log_dir.rglob("*.log"):
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


def _flatten(options):
    """Turn {"-a": "x", "-b": "y"} into ["-a", "x", "-b", "y"]."""
    return [part for option in options.items() for part in option]


def nodes_started_in(run_dir):
    """Return how many app nodes the last start left pidfiles for in `run_dir` (1 if none)."""
    numbers = [
        int(folder.name[4:])
        for folder in Path(run_dir).glob("node*")
        if folder.name[4:].isdigit() and any((folder / name).exists() for name in ("uwsgi.pid", "nginx.pid"))
    ]
    return max(numbers, default=1)


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
    parser.add_argument(
        "--nodes",
        type=int,
        help="app nodes, each its own Nginx + uWSGI on 127.0.0.2, .3, ... behind cluster.vcl (start: default 1, "
        "one node on 127.0.0.1 behind default.vcl; stop, status: default what the run folder holds)",
    )
    parser.add_argument("--skip-manage", action="store_true", help="skip migrate, createcachetable, collectstatic")
    parser.add_argument(
        "--seed-demo",
        type=int,
        metavar="PRODUCTS",
        help="with SHOP_DEMO on: seed this many demo products if the catalog is empty, make the demo admin",
    )
    parser.add_argument("--timeout", default=60, type=float, help="seconds to wait for /healthz")
    args = parser.parse_args(argv)
    nodes = args.nodes or (1 if args.command == "start" else nodes_started_in(args.run_dir))
    stack = Stack(ROOT, args.run_dir, args.varnish_port, args.nginx_port, args.processes, nodes=nodes)
    try:
        if args.command == "start":
            seconds = stack.start(manage=not args.skip_manage, timeout=args.timeout, demo_products=args.seed_demo)
            print(f"stack up in {seconds:.1f} s (logs in {stack.log_dir})")
            print(f"  shop, through Varnish:  {stack.url('/')}")
            for node in stack.app_nodes:
                label = "Nginx, behind it:" if stack.nodes == 1 else f"{node.name}'s Nginx:"
                print(f"  {label:23} {node.url}/")
            print("  stop it:                python -m deploy.stack stop  (or make stack-down)")
            if stack.demo_login:
                print(stack.demo_login)
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
        print(f"{name:12} {'pid ' + str(pid) if pid else 'not running'}")
    if not all(pids.values()):
        return 1
    try:
        with HTTP.open(stack.url("/healthz"), timeout=5) as response:
            print(f"{stack.url('/healthz')} -> {response.status}")
    except (urllib.error.URLError, OSError) as error:
        print(f"{stack.url('/healthz')} -> {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
