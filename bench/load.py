"""Drive wrk: one bounded run, its figures read from a Lua `done` hook instead of its text."""

import json
import os
import subprocess
from pathlib import Path

WRK = "wrk"

# Printed once by wrk when the run ends; latencies are in microseconds. A script that defines
# `bench_extra()` adds its own fields (a string that starts with a comma).
_DONE_HOOK = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  local extra = ""
  if bench_extra then extra = bench_extra() end
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, '
    .. '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d, '
    .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d%s}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, extra))
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


# A page view as the page's script makes it (bench/README.md says how the requests were derived):
# the HTML of BENCH_PAGE, then, when BENCH_API is set, one GET of it, as the badge that fetched the
# cart on every page did. Each view is the next visitor's of BENCH_COOKIES (one Cookie header a
# line), or has no cookie. Requests from a thread's connections interleave, so the mix is exactly
# one API call per view without each pair sharing a connection. `views` and `calls` count what
# was sent; `bench_extra` hands them to the done hook.
_PAGEVIEW_HOOK = r"""
local visitors = {}
local cookies_file = os.getenv("BENCH_COOKIES") or ""
if cookies_file ~= "" then
  for line in io.lines(cookies_file) do visitors[#visitors + 1] = line end
end
local page = os.getenv("BENCH_PAGE")
local api = os.getenv("BENCH_API") or ""
local who, pending = 0, false
views, calls = 0, 0

local function headers()
  local h = {}
  for name, value in pairs(wrk.headers) do h[name] = value end
  if #visitors > 0 then h["Cookie"] = visitors[who + 1] end
  return h
end

init = function(args)
  who = math.random(math.max(#visitors, 1)) - 1
end

request = function()
  if pending then
    pending = false
    calls = calls + 1
    return wrk.format("GET", api, headers())
  end
  if #visitors > 0 then who = (who + 1) % #visitors end
  views = views + 1
  pending = api ~= ""
  return wrk.format("GET", page, headers())
end

local threads = {}
setup = function(thread) threads[#threads + 1] = thread end
bench_extra = function()
  local v, c = 0, 0
  for _, thread in ipairs(threads) do v = v + thread:get("views"); c = c + thread:get("calls") end
  return string.format(', "views": %d, "calls": %d', v, c)
end
"""


def write_scripts(folder):
    """Write the Lua scripts into `folder`; return {"done": path, "paths": path, "pageview": path}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    scripts = {"done": _DONE_HOOK, "paths": _PATHS_HOOK + _DONE_HOOK, "pageview": _PAGEVIEW_HOOK + _DONE_HOOK}
    for name, text in scripts.items():
        (folder / f"{name}.lua").write_text(text)
    return {name: folder / f"{name}.lua" for name in scripts}


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
        # Sent by the page-view script: HTML requests (views) and API requests (calls).
        **{key: raw[key] for key in ("views", "calls") if key in raw},
    }


def version():
    answer = subprocess.run([WRK, "-v"], capture_output=True, text=True)
    return (answer.stdout + answer.stderr).split("\n")[0].strip()
