"""The local S3-compatible endpoint for result artifacts: moto's S3 server, a real HTTP server speaking the S3 API.

It keeps objects in memory, so they last as long as the server runs; production points ``ZIXLY_S3_ENDPOINT_URL``
at AWS S3 (``aws``) or another S3-compatible store.
"""

import sys
import time
from dataclasses import dataclass

import httpx

from kernel.settings import Settings
from zixly.stack.processes import PidFile, spawn, terminate


@dataclass
class S3Status:
    running: bool
    pid: int | None
    address: str


class S3Server:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pidfile = PidFile(settings.home / "run" / "s3.pid")
        self.log_path = settings.home / "logs" / "s3.log"
        self.url = f"http://127.0.0.1:{settings.s3_port}"

    def status(self) -> S3Status:
        pid = self.pidfile.alive_pid()
        return S3Status(running=pid is not None, pid=pid, address=self.url)

    def start(self, timeout: float = 30.0) -> bool:
        """Start the endpoint unless it runs; wait until it answers. False when it already ran."""
        if self.pidfile.alive_pid() is not None:
            self._wait(timeout)
            return False
        process = spawn(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.settings.s3_port)], self.log_path
        )
        self.pidfile.write(process.pid)
        try:
            self._wait(timeout)
        except TimeoutError:
            if process.poll() is not None:
                raise RuntimeError(f"the S3 endpoint exited with {process.returncode}; see {self.log_path}") from None
            raise
        return True

    def stop(self) -> bool:
        pid = self.pidfile.alive_pid()
        self.pidfile.remove()
        if pid is None:
            return False
        terminate(pid, timeout=15)
        return True

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/moto-api/", timeout=1.0).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"the S3 endpoint at {self.url} did not answer within {timeout:.0f} s")
