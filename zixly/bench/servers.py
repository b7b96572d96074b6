"""Servers a benchmark starts for itself, waited on until they answer."""

import os
import time
import urllib.request
from pathlib import Path

from zixly.stack.processes import spawn

# A benchmark measures what a receiver can take, so its tenant is not held to a tenant's rate or quota (the
# limiter's own cost, a dictionary lookup and a count a second, is still paid).
UNLIMITED_TENANT = {
    "ZIXLY_TENANT_RATE_PER_SECOND": "1e9",
    "ZIXLY_TENANT_RATE_BURST": "1000000000",
    "ZIXLY_TENANT_MAX_IN_FLIGHT": "1000000000",
}


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except Exception:  # not up yet
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def start_server(command: list[str], ready_url: str, log: Path, env: dict[str, str]) -> int:
    """The server's pid, once ``ready_url`` answers."""
    log.parent.mkdir(parents=True, exist_ok=True)
    process = spawn(command, log, env=os.environ | env)
    wait_http(ready_url)
    return process.pid
