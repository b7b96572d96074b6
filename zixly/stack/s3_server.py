"""The local S3-compatible endpoint for result artifacts: gofakes3, a small S3 server written in Go, built once
from the Go module proxy into the cache and run with its bolt backend, so objects persist in ``<home>/s3`` like
Kafka's and Postgres's data do. Production points ``ZIXLY_S3_ENDPOINT_URL`` at MinIO or AWS S3 (``aws``).
"""

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from kernel.settings import Settings
from zixly.stack.errors import StackError
from zixly.stack.ports import WantedPort, ensure_free
from zixly.stack.processes import PidFile, spawn, terminate

GOFAKES3 = "github.com/johannesboyne/gofakes3/cmd/gofakes3"
GOFAKES3_VERSION = "v1.2.0"


@dataclass
class S3Status:
    running: bool
    pid: int | None
    address: str
    data: Path


class S3Server:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.binary = settings.cache / f"gofakes3-{GOFAKES3_VERSION}" / "gofakes3"
        self.data = settings.home / "s3" / "objects.db"
        self.pidfile = PidFile(settings.home / "run" / "s3.pid", command="gofakes3")
        self.log_path = settings.home / "logs" / "s3.log"
        self.url = f"http://127.0.0.1:{settings.s3_port}"

    def status(self) -> S3Status:
        pid = self.pidfile.alive_pid()
        return S3Status(running=pid is not None, pid=pid, address=self.url, data=self.data)

    def build(self) -> bool:
        """Build the server from the Go module proxy into the cache; False when it was there already."""
        if self.binary.exists():
            return False
        go = shutil.which("go")
        if go is None:
            raise StackError("Go is needed to build the local S3 endpoint once: apt-get install golang-go")
        self.binary.parent.mkdir(parents=True, exist_ok=True)
        env = os.environ | {"GOBIN": str(self.binary.parent), "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}
        subprocess.run([go, "install", f"{GOFAKES3}@{GOFAKES3_VERSION}"], check=True, env=env)
        return True

    def start(self, timeout: float = 30.0, dies_with_parent: bool = False) -> bool:
        """Start the endpoint unless it runs; wait until it answers. False when it already ran."""
        if self.pidfile.alive_pid() is not None:
            self._wait(timeout)
            return False
        self.build()
        ensure_free([WantedPort(self.settings.s3_port, "the local S3 endpoint", "ZIXLY_S3_PORT")])
        self.data.parent.mkdir(parents=True, exist_ok=True)
        process = spawn(
            [
                str(self.binary),
                "-backend",
                "bolt",
                "-bolt.db",
                str(self.data),
                "-host",
                f"127.0.0.1:{self.settings.s3_port}",
                "-initialbucket",
                self.settings.s3_bucket,
            ],
            self.log_path,
            dies_with_parent=signal.SIGTERM if dies_with_parent else None,
        )
        self.pidfile.write(process.pid)
        try:
            self._wait(timeout)
        except TimeoutError:
            if process.poll() is not None:
                raise StackError(f"the S3 endpoint exited with {process.returncode}; see {self.log_path}") from None
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
                if httpx.get(f"{self.url}/", timeout=1.0).status_code < 500:  # ListBuckets
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"the S3 endpoint at {self.url} did not answer within {timeout:.0f} s")
