"""Drive wrk: one bounded run, its figures read from a Lua `done` hook instead of its text."""

import json
import os
import subprocess
from pathlib import Path

WRK = "wrk"

# Printed once by wrk when the run ends; latencies are in microseconds.
_DONE_HOOK = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, '
    .. '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d, '
    .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""

# Cycles each thread through the paths listed in BENCH_PATHS, one per line.
_PATHS_HOOK = r"""
local paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
local next_path = 0
init = function(args)
  next_path = math.random(#paths)
end
request = function()
  next_path = next_path % #paths + 1
  return wrk.format(nil, paths[next_path])
end
"""


def write_scripts(folder):
    """Write the two Lua scripts into `folder`; return {"done": path, "paths": path}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    done = folder / "done.lua"
    done.write_text(_DONE_HOOK)
    paths = folder / "paths.lua"
    paths.write_text(_PATHS_HOOK + _DONE_HOOK)
    return {"done": done, "paths": paths}


def run(url, seconds, script, connections=32, threads=2, headers=(), env=None, paths_file=None):
    """Load `url` for `seconds` with wrk; return the figures as a dict (req/s, ms, errors)."""
    command = [WRK, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script)]
    for header in headers:
        command += ["-H", header]
    command.append(url)
    run_env = dict(env or {})
    if paths_file:
        run_env["BENCH_PATHS"] = str(paths_file)
    answer = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 30, env={**os.environ, **run_env}
    )
    line = next((ln for ln in answer.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if answer.returncode or line is None:
        raise RuntimeError(f"wrk failed ({answer.returncode}): {answer.stdout[-800:]} {answer.stderr[-800:]}")
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    seconds_run = raw["duration_us"] / 1e6
    errors = sum(raw[k] for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"))
    return {
        "requests": raw["requests"],
        "seconds": round(seconds_run, 3),
        "rps": raw["requests"] / seconds_run if seconds_run else 0.0,
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "errors": errors,
        "non_2xx_3xx": raw["status_errors"],
        "bytes": raw["bytes"],
    }



def version():
    answer = subprocess.run([WRK, "-v"], capture_output=True, text=True)
    return (answer.stdout + answer.stderr).split("\n")[0].strip()
