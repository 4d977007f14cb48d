"""What the project's VCL costs per Varnish HIT, counted in instructions rather than timed.

Two Varnish instances measured in alternation with wrk wander by 10% and more from run to run on
this shared 2-core machine, more than the 0.9x target leaves. valgrind's callgrind counts the
instructions a process executes, and that count repeats for the same binary, VCL and requests
whatever else the machine is doing. So one varnishd runs under callgrind with both VCLs loaded,
the floor's (a backend and nothing else: builtin.vcl decides) and the shipped default.vcl with
shop.vcl, both aimed at the stack's Nginx. For each VCL in turn: the cache is emptied (a ban), the
product page fetched once (the miss) and twice more, the counters zeroed, `hits` hits sent over one
keep-alive connection as wrk sends them (no Accept-Encoding), and the counters dumped. The same
dump gives each VCL subroutine's cost per hit (inclusive: with what it calls).

The count covers varnishd's child, all its threads, in user space: the kernel's share of a hit
(the socket calls, the same for both VCLs) is not in it, so the ratio here is larger than the
req/s ratio it explains.
"""

import http.client
import re
import subprocess
import time
from pathlib import Path

from harness.process import StackError, tool
from harness.servers import Varnish

# The VCL compiler's cc, as, ld (run by varnishd's manager): not worth counting.
_NOT_TRACED = "*cc*,*cc1*,*/as,*/ld,*collect2"
# varnishd -F logs "Debug: Child (1234) Started" on stderr.
_CHILD_STARTED = re.compile(r"Child \((\d+)\) Started")
_TOTALS = re.compile(r"^(?:summary|totals):\s+(\d+)", re.MULTILINE)
# callgrind_annotate --inclusive=yes: "  1,234,567 (12.34%)  .../vgc.c:VGC_function_pick_5f_grace [...]"
_SUBROUTINE = re.compile(r"^\s*([\d,]+)\s+\([^)]*\)\s+\S*vgc\.c:VGC_function_(\w+)\s+\[", re.MULTILINE)


class CallgrindVarnish(Varnish):
    """harness's Varnish (the stack's options) under callgrind, its child's counters zeroed and dumped on demand."""

    name = "varnish-callgrind"

    def __init__(self, run_dir, port, floor_vcl):
        run_dir = Path(run_dir)
        super().__init__(run_dir / "varnishd", port, floor_vcl, run_dir / "varnishd.log")
        self.dumps = run_dir / "callgrind"

    def start(self, timeout=180):
        self.dumps.mkdir(parents=True, exist_ok=True)
        hint = "`make bench` installs it (apt-get install valgrind)"
        self.spawn([
            tool("valgrind", hint), "--tool=callgrind", "--trace-children=yes",
            f"--trace-children-skip={_NOT_TRACED}", f"--callgrind-out-file={self.dumps}/cg.%p",
            # No jail: the child stays root and can write its counters to `dumps`.
            *self.argv(), "-j", "none",
        ])
        self.wait_listening(self.port, timeout)
        return self

    def adm(self, *args):
        answer = subprocess.run([tool("varnishadm"), "-n", str(self.work_dir), *args],
                                capture_output=True, text=True, timeout=300)
        if answer.returncode:
            raise StackError(f"varnishadm {' '.join(args)}: {answer.stdout[-500:]}{answer.stderr[-500:]}")
        return answer.stdout

    def child_pid(self):
        """Return the PID of the child that serves requests, as the manager logs it at its start."""
        started = _CHILD_STARTED.findall(self.log_path.read_text())
        if not started:
            raise StackError(f"no child start in {self.log_path}\n{self.log_tail()}")
        return int(started[-1])

    def control(self, option, pid):
        subprocess.run([tool("callgrind_control"), option, str(pid)], capture_output=True, timeout=120,
                       check=True)

    def last_dump(self, pid):
        dumps = sorted(self.dumps.glob(f"cg.{pid}*"), key=lambda p: p.stat().st_mtime)
        if not dumps:
            raise StackError(f"no callgrind dump of process {pid} in {self.dumps}")
        return dumps[-1]


def total_instructions(dump_text):
    """Return the instruction count a callgrind dump holds."""
    found = _TOTALS.search(dump_text)
    if not found:
        raise ValueError("no summary or totals line in the callgrind dump")
    return int(found.group(1))


def subroutine_costs(annotated, requests):
    """Return {VCL subroutine: instructions per request} from `callgrind_annotate --inclusive=yes`."""
    costs = {}
    for count, mangled in _SUBROUTINE.findall(annotated):
        name = mangled.replace("_5f_", "_")  # VCC writes the "_" of a subroutine's name as _5f_
        costs.setdefault(name, round(int(count.replace(",", "")) / requests))
    return costs


def _hits(port, path, count):
    """GET `path` `count` times over one keep-alive connection, with wrk's headers (Host only)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for _ in range(count):
        connection.putrequest("GET", path, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise StackError(f"GET {path} through the counted Varnish: {response.status}")
    connection.close()


def measure(run_dir, port, floor_vcl, shop_vcl, path, hits, rounds=2, progress=print):
    """Count instructions per HIT under each VCL, `rounds` times each, alternating."""
    varnish = CallgrindVarnish(Path(run_dir) / "vclcost", port, floor_vcl)
    try:
        varnish.start()
        _hits(port, path, 1)  # the floor VCL answers: the child runs
        varnish.adm("vcl.load", "shop", str(shop_vcl))
        child = varnish.child_pid()
        runs = {"builtin": [], "shop": []}
        annotated = ""
        for _ in range(rounds):
            for name, vcl in (("builtin", "boot"), ("shop", "shop")):
                varnish.adm("vcl.use", vcl)
                varnish.adm("ban", "req.url", "~", ".")
                _hits(port, path, 3)  # the miss, then two hits
                time.sleep(0.5)
                varnish.control("-z", child)
                _hits(port, path, hits)
                varnish.control("-d", child)
                dump = varnish.last_dump(child)
                runs[name].append(total_instructions(dump.read_text()) / hits)
                progress(f"vclcost: {name:8} {runs[name][-1]:,.0f} instructions per hit")
                if name == "shop":
                    annotated = subprocess.run(
                        [tool("callgrind_annotate"), "--inclusive=yes", "--threshold=100", str(dump)],
                        capture_output=True, text=True, timeout=300, check=True).stdout
    finally:
        varnish.stop()
    builtin, shop = min(runs["builtin"]), min(runs["shop"])
    return {"hits": hits, "builtin": builtin, "shop": shop, "ratio": shop / builtin, "runs": runs,
            "subroutines": subroutine_costs(annotated, hits),
            "valgrind": subprocess.run([tool("valgrind"), "--version"], capture_output=True,
                                       text=True).stdout.strip()}
