"""Load generators (wrk for saturation, hey for a fixed rate) and parsers of what they print."""

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

BODY = '{"job_type":"noop","parameters":{"echo":{"n":1}}}'
TENANT = "bench"


@dataclass(frozen=True)
class LoadResult:
    ok_per_second: float
    p50_ms: float
    p99_ms: float
    ok: int
    failed: int


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise RuntimeError(f"{tool} is needed for the benchmark: apt-get install {tool} (make bench does)")
    return path


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def wrk(
    url: str, seconds: int, connections: int = 64, prepared: Path | None = None, rate: int | None = None
) -> LoadResult:
    """As many requests as the server takes, from one wrk thread over ``connections`` keep-alive connections.

    ``prepared``: a file of requests to send once each, one per line (tenant, webhook-id, webhook-timestamp,
    webhook-signature, tab-separated), as signed deliveries are never repeated. ``rate``: each connection waits
    ``connections / rate`` between its requests (a paced, closed-loop rate like hey's ``-q``; the table reports
    the rate reached)."""
    script = _script(prepared, None if rate is None else connections * 1000 / rate)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script)
    try:
        output = subprocess.run(
            [require("wrk"), "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", lua.name, url],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 120,
        ).stdout
    finally:
        Path(lua.name).unlink()
    total = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    elapsed = re.search(r"requests in ([\d.]+)(\w+),", output)
    assert elapsed is not None
    duration_s = _ms(elapsed.group(1), elapsed.group(2)) / 1000
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    failed = (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, errors.groups())) if errors else 0)
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", output, re.MULTILINE))
    return LoadResult(
        ok_per_second=(total - (int(non_2xx.group(1)) if non_2xx else 0)) / duration_s,
        p50_ms=_parse_duration(percentiles["50"]),
        p99_ms=_parse_duration(percentiles["99"]),
        ok=total - (int(non_2xx.group(1)) if non_2xx else 0),
        failed=failed,
    )


def _script(prepared: Path | None, delay_ms: float | None) -> str:
    script = (
        'wrk.method = "POST"\n'
        f"wrk.body = '{BODY}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["X-Tenant-ID"] = "{TENANT}"\n'
    )
    if prepared is not None:
        script += f"""
local prepared, sent = {{}}, 0
function init(args)
  for line in io.lines([[{prepared}]]) do
    local tenant, id, stamp, signature = line:match("^([^\\t]*)\\t([^\\t]*)\\t([^\\t]*)\\t(.*)$")
    prepared[#prepared + 1] = wrk.format(nil, nil, {{["Content-Type"] = "application/json",
      ["X-Tenant-ID"] = tenant, ["webhook-id"] = id, ["webhook-timestamp"] = stamp,
      ["webhook-signature"] = signature}}, nil)
  end
end
function request()
  sent = sent + 1
  -- Past the prepared requests, a path that answers 404: counted as failures, never as a repeated delivery.
  if sent > #prepared then return wrk.format(nil, "/prepared-requests-ran-out") end
  return prepared[sent]
end
"""
    if delay_ms is not None:
        script += f"function delay() return {delay_ms:.3f} end\n"
    return script


def _parse_duration(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    assert match is not None, text
    return _ms(match.group(1), match.group(2))


def hey_fixed_rate(url: str, seconds: int, rate: int, workers: int = 20) -> LoadResult:
    """``rate`` requests per second, spread over ``workers`` connections, for ``seconds``."""
    output = subprocess.run(
        [
            require("hey"),
            "-z",
            f"{seconds}s",
            "-c",
            str(workers),
            "-q",
            str(rate // workers),
            "-m",
            "POST",
            "-T",
            "application/json",
            "-H",
            f"X-Tenant-ID: {TENANT}",
            "-d",
            BODY,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    percentiles = dict(re.findall(r"(50|99)% in ([\d.]+) secs", output))
    statuses = {int(code): int(count) for code, count in re.findall(r"\[(\d{3})\]\s+(\d+) responses", output)}
    ok = sum(count for code, count in statuses.items() if 200 <= code < 300)
    return LoadResult(
        ok_per_second=ok / seconds,
        p50_ms=float(percentiles["50"]) * 1000,
        p99_ms=float(percentiles["99"]) * 1000,
        ok=ok,
        failed=sum(statuses.values()) - ok,
    )
