"""Drive a server with wrk: a generated Lua script sends the given requests in turn and prints its numbers as JSON.

wrk keeps ``connections`` connections busy from ``threads`` threads for ``seconds``. The script pre-formats every
request once per thread and hands them out in turn, each thread starting at its own place in the list, so two
threads do not send the same request at the same moment. A body may hold :data:`UNIQUE`: each request then gets a
token unique to the run in its place (a new email address per submission, say).

Errors are what wrk counts: responses with a status of 400 or more, and socket errors (connect, read, write,
timeout).
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

UNIQUE = "{unique}"
MARKER = "WRK_JSON "


class WrkMissingError(RuntimeError):
    """wrk is not installed."""


@dataclass(frozen=True)
class Request:
    path: str
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str | None = None


@dataclass(frozen=True)
class Load:
    """What one wrk run measured. Latencies are of completed requests."""

    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    status_errors: int  # responses with a status of 400 or more
    socket_errors: int  # connect, read, write and timeout errors

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.status_errors + self.socket_errors


def wrk_binary() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise WrkMissingError("wrk is not installed: apt-get install wrk (make bench installs it)")
    return path


def lua_string(text: str) -> str:
    """``text`` as a Lua string literal: printable ASCII as is, every other byte as a decimal escape."""
    out = []
    for byte in text.encode():
        char = chr(byte)
        if char in '"\\' or not 32 <= byte < 127:
            out.append(f"\\{byte:03d}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _lua_request(request: Request) -> str:
    headers = ", ".join(f"[{lua_string(name)}] = {lua_string(value)}" for name, value in request.headers.items())
    parts = "nil" if request.body is None else "{" + ", ".join(map(lua_string, request.body.split(UNIQUE))) + "}"
    return f"{{{lua_string(request.method)}, {lua_string(request.path)}, {{{headers}}}, {parts}}}"


def script(requests: Sequence[Request], *, threads: int) -> str:
    """The Lua script that sends ``requests`` in turn and prints a JSON summary after :data:`MARKER`."""
    if not requests:
        raise ValueError("no requests")
    rows = ",\n".join(_lua_request(request) for request in requests)
    run = secrets.token_hex(6)
    return f"""
local specs = {{
{rows}
}}
local run = {lua_string(run)}
local count = 0

function setup(thread)
  thread:set("id", count)
  count = count + 1
end

local formatted = {{}}
local unique = {{}}
local position = 0
local sent = 0

local function copy(headers)
  local out = {{}}
  for name, value in pairs(headers) do out[name] = value end
  return out
end

function init(args)
  for i, spec in ipairs(specs) do
    local method, path, headers, parts = spec[1], spec[2], spec[3], spec[4]
    if parts ~= nil and #parts > 1 then
      unique[i] = spec
    else
      formatted[i] = wrk.format(method, path, copy(headers), parts and parts[1] or nil)
    end
  end
  position = math.floor(id * #specs / {threads})
end

function request()
  position = position % #specs + 1
  local ready = formatted[position]
  if ready ~= nil then return ready end
  sent = sent + 1
  local spec = unique[position]
  local body = table.concat(spec[4], run .. "-" .. id .. "-" .. sent)
  return wrk.format(spec[1], spec[2], copy(spec[3]), body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{MARKER}{{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, ' ..
    '"timeout": %d, "p50_us": %.1f, "p90_us": %.1f, "p99_us": %.1f, "max_us": %.1f}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def parse(output: str) -> Load:
    """The :class:`Load` in wrk's output (the line the script's ``done`` printed)."""
    for line in output.splitlines():
        if line.startswith(MARKER):
            data = json.loads(line[len(MARKER) :])
            return Load(
                requests=int(data["requests"]),
                seconds=data["duration_us"] / 1e6,
                p50_ms=data["p50_us"] / 1000,
                p90_ms=data["p90_us"] / 1000,
                p99_ms=data["p99_us"] / 1000,
                max_ms=data["max_us"] / 1000,
                status_errors=int(data["status"]),
                socket_errors=int(data["connect"] + data["read"] + data["write"] + data["timeout"]),
            )
    raise RuntimeError(f"wrk printed no summary:\n{output[-3000:]}")


def run(
    base_url: str,
    requests: Sequence[Request],
    *,
    seconds: float,
    connections: int = 32,
    threads: int = 2,
    timeout: float = 5.0,
) -> Load:
    """Send ``requests`` (in turn) to ``base_url`` with wrk for ``seconds``; what it measured."""
    binary = wrk_binary()
    with tempfile.TemporaryDirectory(prefix="keel-bench-wrk-") as folder:
        lua = Path(folder) / "requests.lua"
        lua.write_text(script(requests, threads=threads), encoding="ascii")
        argv = [
            binary,
            f"--connections={connections}",
            f"--threads={threads}",
            f"--duration={max(1, round(seconds))}s",
            f"--timeout={max(1, round(timeout))}s",
            f"--script={lua}",
            base_url,
        ]
        completed = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + timeout + 60, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"wrk exited with {completed.returncode}:\n{completed.stderr[-3000:]}")
    return parse(completed.stdout)
