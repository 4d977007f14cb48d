"""Run the varnishtest cases of deploy/varnish/tests/ against the shipped default.vcl.

Each .vtc proves one decision of the VCL; run_vtc.sh says how a case aims the shipped file
at its fake backend. The cases run once, four at a time, and each gets its own pytest test,
so a failure is named. Varnish's tools are required: a missing varnishtest fails these
tests rather than skipping them, so a green run always means the VCL was tested.
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

VARNISH_DIR = Path(__file__).resolve().parent.parent / "deploy" / "varnish"
DEFAULT_VCL = VARNISH_DIR / "default.vcl"
RUN_VTC = VARNISH_DIR / "run_vtc.sh"
CASES = sorted((VARNISH_DIR / "tests").glob("*.vtc"))

# Debian installs varnishd in /usr/sbin, which a non-root PATH often lacks.
SEARCH_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# varnishtest ends the report of each case with a line such as
#   #    top  TEST /path/to/grace_serves_stale_on_error.vtc passed (3.551)
VERDICT = re.compile(r"^#\s+top\s+TEST\s+(\S+)\s+(passed|FAILED|skipped)\b")


def _require(tool):
    """Return the path of a Varnish tool, or fail the test saying how to install it."""
    path = shutil.which(tool) or shutil.which(tool, path=SEARCH_PATH)
    if path is None:
        pytest.fail(f"{tool} is not installed: apt-get install varnish (7.x) to test {DEFAULT_VCL}", pytrace=False)
    return path


def _split_by_case(output):
    """Map each case's path to its verdict and its part of the report, which ends at the verdict."""
    reports, lines = {}, []
    for line in output.splitlines():
        lines.append(line)
        match = VERDICT.match(line)
        if match:
            reports[match[1]] = (match[2], lines)
            lines = []
    return reports


def _explain(lines):
    """Keep what explains a failure: varnishtest's '----' lines, then the end of the report."""
    reasons = [line for line in lines if line.startswith("----")]
    return "\n".join([*reasons, "", "... end of the report:", *lines[-40:]])


@pytest.fixture(scope="module")
def vtc_reports(request):
    """Run the selected cases through run_vtc.sh in one go; return each case's verdict and report."""
    _require("varnishd")
    _require("varnishtest")
    selected = [
        item.callspec.params["case"]
        for item in request.session.items
        if item.module is request.module and hasattr(item, "callspec")
    ]
    result = subprocess.run(["sh", str(RUN_VTC), *map(str, selected)], capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    return _split_by_case(output), output.splitlines()


def test_vtc_cases_exist():
    assert CASES, f"no .vtc files in {VARNISH_DIR / 'tests'}"


def test_backend_port_written_once():
    # `make stack` renders the VCL by replacing the port string; a second copy would drift.
    assert DEFAULT_VCL.read_text().count('"8081"') == 1


def test_default_vcl_compiles(tmp_path):
    varnishd = _require("varnishd")
    # -n: a fresh instance folder, so compiling needs no running varnishd.
    result = subprocess.run(
        [varnishd, "-C", "-n", str(tmp_path / "varnishd"), "-f", str(DEFAULT_VCL)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-4000:]


@pytest.mark.parametrize("case", CASES, ids=lambda path: path.stem)
def test_vtc(case, vtc_reports):
    reports, whole_output = vtc_reports
    verdict, lines = reports.get(str(case), ("missing from the report", whole_output))
    assert verdict == "passed", _explain(lines)


def test_the_vcl_grace_windows_are_the_stale_windows_django_announces():
    """Caches in front read the windows from Cache-Control; the shipped Varnish must use the same."""
    from pagecache.conf import DEFAULTS

    vcl = (VARNISH_DIR / "shop.vcl").read_text()
    healthy = re.search(r"std\.healthy\(req\.backend_hint\)\)\s*\{\s*set req\.grace = (\d+)s;", vcl)
    fallback = re.search(r"set beresp\.grace = (\d+)h;", vcl)
    assert int(healthy.group(1)) == DEFAULTS["STALE_WHILE_REVALIDATE_SECONDS"]
    assert int(fallback.group(1)) * 3600 == DEFAULTS["STALE_IF_ERROR_SECONDS"]
