"""How deploy/stack.py renders a stack of several app nodes, checked without starting a server.

One node is today's stack, file for file. Several nodes each get their own listen address, socket,
pidfiles and logs from the same shop.conf and shop.ini, and cluster.vcl gets one backend per node,
which varnishd must compile. (Only varnishd is needed: `varnishd -C` compiles and exits.)
"""

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from deploy.stack import Stack, render_backends
from harness.process import StackError, tool
from tests.stack.fixtures import ROOT

pytestmark = pytest.mark.stack

PORT = 18999


def _rendered(tmp_path, nodes):
    stack = Stack(ROOT, tmp_path / "run", varnish_port=16999, nginx_port=PORT, nodes=nodes)
    stack.render()
    return stack


def test_one_node_is_todays_stack(tmp_path):
    stack = _rendered(tmp_path, 1)

    assert stack.vcl_file == stack.conf_dir / "varnish" / "default.vcl"
    assert stack.nginx_url == f"http://127.0.0.1:{PORT}"
    assert f"listen 127.0.0.1:{PORT};" in (stack.conf_dir / "nginx" / "shop.conf").read_text()
    assert f"socket = {stack.run_dir}/uwsgi.sock" in (stack.conf_dir / "uwsgi" / "shop.ini").read_text()
    assert list(stack.status()) == ["uwsgi", "nginx", "varnish"]
    assert not any(stack.conf_dir.glob("node*"))


def test_each_node_gets_its_own_address_socket_pidfiles_and_logs(tmp_path):
    stack = _rendered(tmp_path, 3)
    node = stack.node(2)
    nginx = (node.conf_dir / "nginx" / "shop.conf").read_text()
    ini = (node.conf_dir / "uwsgi" / "shop.ini").read_text()
    main = (node.conf_dir / "nginx" / "nginx.conf").read_text()

    assert node.url == f"http://127.0.0.3:{PORT}"
    assert f"listen 127.0.0.3:{PORT};" in nginx
    assert f"server unix:{stack.run_dir}/node2/uwsgi.sock;" in nginx
    assert f"access_log {stack.log_dir}/node2/nginx-access.log shop;" in nginx
    assert f"socket = {stack.run_dir}/node2/uwsgi.sock" in ini
    assert f"pidfile = {stack.run_dir}/node2/uwsgi.pid" in ini
    assert f"touch-chain-reload = {stack.run_dir}/node2/reload" in ini
    assert f"pid {stack.run_dir}/node2/nginx.pid;" in main
    assert list(stack.status()) == [f"node{i}.{kind}" for i in (1, 2, 3) for kind in ("uwsgi", "nginx")] + ["varnish"]
    # The rendered files differ only where the node's address and folders go.
    other = (stack.node(3).conf_dir / "nginx" / "shop.conf").read_text()
    assert nginx.replace("127.0.0.3", "ADDR").replace("node2", "NODE") == other.replace("127.0.0.4", "ADDR").replace(
        "node3", "NODE"
    )


@pytest.mark.parametrize("nodes", [2, 5])
def test_cluster_vcl_gets_one_backend_per_node_and_compiles(tmp_path, nodes):
    stack = _rendered(tmp_path, nodes)
    vcl = stack.vcl_file.read_text()

    assert stack.vcl_file.name == "cluster.vcl"
    assert re.findall(r'^backend (node\d+) \{\n    \.host = "([\d.]+)";\n    \.port = "(\d+)";', vcl, re.M) == [
        (f"node{i}", f"127.0.0.{1 + i}", str(PORT)) for i in range(1, nodes + 1)
    ]
    assert re.findall(r"app\.add_backend\((node\d+)\);", vcl) == [f"node{i}" for i in range(1, nodes + 1)]
    assert vcl.count(".probe = healthz;") == nodes
    # varnishd compiles as its unprivileged user, who cannot enter pytest's private tmp_path.
    readable = Path(tempfile.mkdtemp(prefix="shop-cluster-vcl-"))
    try:
        readable.chmod(0o755)
        shutil.copytree(stack.vcl_file.parent, readable / "varnish")
        varnishd = tool("varnishd")
        compiled = subprocess.run(
            [varnishd, "-C", "-n", str(readable / "varnishd"), "-f", str(readable / "varnish" / "cluster.vcl")],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        shutil.rmtree(readable, ignore_errors=True)
    assert compiled.returncode == 0, compiled.stderr[-3000:]


def test_backends_must_stand_together_to_be_rendered():
    vcl = (ROOT / "deploy" / "varnish" / "cluster.vcl").read_text()
    scattered = vcl.replace("backend node2 {", "sub vcl_fini { return (ok); }\n\nbackend node2 {")

    with pytest.raises(StackError, match="stand together"):
        render_backends(scattered, ["127.0.0.2", "127.0.0.3"])


def test_nodes_must_be_one_or_more(tmp_path):
    with pytest.raises(ValueError):
        Stack(ROOT, tmp_path, nodes=0)
