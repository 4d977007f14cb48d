"""Several app nodes behind one Varnish, sharing one database and one Redis: the scale-out tests' stack.

    cluster = start_cluster("scale-out", varnish_port=16093, nginx_port=18093, redis_port=26379)
    cluster.stack                       # deploy/stack.py's Stack with nodes=3 (cluster.vcl)
    cluster.stack.node(2).url           # http://127.0.0.3:18093, node 2's own Nginx
    cluster.redis.kill()                # the shared cache down, as a crash would take it
    stop_cluster(cluster, "scale-out", failed=request.session.testsfailed)

The Redis is a throwaway redis-server of its own (harness.servers.Redis) (no persistence, loopback only), so a test can
kill it without touching the machine's Redis on 6379. The database is a fresh one per cluster,
as tests/stack/fixtures.py makes it for the single-node stack: SQLite in the run folder, or a
database of its own on the MySQL server of DATABASE_URL.
"""

import re
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from deploy.stack import Stack
from harness.servers import Redis, Varnish
from tests.stack.fixtures import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    ARTIFACTS,
    DEMO_PRODUCTS,
    ROOT,
    TIMINGS,
    _fresh_database,
)

NODES = 3


@dataclass
class Cluster:
    stack: Stack
    redis: Redis
    second_varnish: "SecondVarnish | None" = None  # stopped with the cluster, when a test starts one


def start_cluster(name, varnish_port, nginx_port, redis_port, nodes=NODES, env=None):
    """Start a Redis, then a `nodes`-node stack on a fresh, seeded database using it as its cache."""
    run_dir = Path(tempfile.mkdtemp(prefix=f"shop-{name}-"))
    # varnishd compiles the VCL as its unprivileged user, who must reach the rendered files.
    run_dir.chmod(0o755)
    redis = Redis(run_dir / "redis", port=redis_port)
    stack = None
    began = time.monotonic()
    try:
        redis.start()
        stack_env = {
            "SHOP_DEMO": "1",
            "DATABASE_URL": _fresh_database(run_dir, f"shop_{name}".replace("-", "_")),
            "DATABASE_REPLICA_URL": "",
            "CACHE_URL": redis.url,
            "DJANGO_SUPERUSER_USERNAME": ADMIN_USERNAME,
            "DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD,
            "DJANGO_SUPERUSER_EMAIL": "stack-admin@example.com",
            **(env or {}),
        }
        stack = Stack(ROOT, run_dir, varnish_port=varnish_port, nginx_port=nginx_port, env=stack_env, nodes=nodes)
        stack.prepare_django()
        with ThreadPoolExecutor(2) as pool:
            seeded = pool.submit(stack.manage, "seed_demo", "--products", str(DEMO_PRODUCTS), "-v0")
            admin = pool.submit(stack.manage, "createsuperuser", "--noinput")
            seeded.result()
            admin.result()
        prepared = time.monotonic() - began
        # Three nodes' workers import Django at once on a shared machine: allow for it.
        stack.start(manage=False, timeout=120)
    except BaseException:
        if stack is not None:
            stack.stop()
        redis.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    TIMINGS[name] = (prepared, stack.started_in)
    return Cluster(stack, redis)


def stop_cluster(cluster, name, failed):
    """Stop every server of the cluster by PID; keep the logs in test-artifacts/ after a failure."""
    try:
        if cluster.second_varnish is not None:
            cluster.second_varnish.stop()
        cluster.stack.stop()
    finally:
        cluster.redis.stop()
        if failed:
            shutil.copytree(cluster.stack.log_dir, ARTIFACTS / f"{name}-logs", dirs_exist_ok=True)
        shutil.rmtree(cluster.stack.run_dir, ignore_errors=True)


# ------------------------------------------------------------------------------------------------
# A second Varnish
# ------------------------------------------------------------------------------------------------


class SecondVarnish(Varnish):
    """Another varnishd running the stack's rendered VCL: two Varnish servers in front of the same nodes."""

    def __init__(self, stack, port):
        super().__init__(stack.run_dir / f"varnish-{port}", port, stack.vcl_file, stack.log_dir / f"varnish-{port}.log",
                         storage="malloc,64m", name=f"varnish-{port}")  # fmt: skip

    def start(self, timeout=30):
        return super().start(timeout, ready_path="/healthz")


# ------------------------------------------------------------------------------------------------
# Helpers for the tests
# ------------------------------------------------------------------------------------------------


def node_health(stack):
    """Return {"node1": "healthy" or "sick", ...}: what Varnish's probes say of each app node."""
    listing = stack.varnishadm("backend.list")
    # Backend name   Admin    Probe    Health     Last change
    # boot.node2     probe    2/5      sick       Sat, 28 Nov 2026 14:08:08 GMT
    return dict(re.findall(r"^\S+\.(node\d+)\s+\S+\s+\S+\s+(healthy|sick)\b", listing, re.MULTILINE))


def nginx_requests(stack, path_prefix):
    """Count, per node, the requests for paths starting with `path_prefix` in its Nginx access log."""
    pattern = re.compile(rf'"[A-Z]+ {re.escape(path_prefix)}')
    counts = {}
    for node in stack.app_nodes:
        log = node.log_dir / "nginx-access.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        counts[node.name] = sum(1 for line in text.splitlines() if pattern.search(line))
    return counts
