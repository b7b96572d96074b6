"""``zixly up``: the whole system in the foreground, stopped cleanly on Ctrl-C.

The services run as child processes (their logs under <home>/logs), so each one keeps its own event loop and
a crash of one is reported rather than taking the others down silently. Every child, and every server of the
stack this command started, gets a parent-death signal: whatever ends ``zixly up`` (Ctrl-C, SIGTERM, SIGKILL, the
end of a pipe it prints into) ends them too, and nothing is left orphaned holding the ports.
"""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

from rich.console import Console
from rich.table import Table

from kernel.settings import Settings
from zixly.development_admin import DEV_ADMIN_FILE, development_admin
from zixly.stack.errors import StackError
from zixly.stack.local import LocalStack
from zixly.stack.ports import WantedPort, ensure_free
from zixly.stack.processes import spawn, terminate


@dataclass
class Child:
    name: str
    command: list[str]
    ready_url: str
    log_path: Path
    ports: list[WantedPort]
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)


class PipeSafeOutput:
    """Standard output that falls silent when its reader goes away.

    Ctrl-C on ``make run | tee run.log`` ends ``tee`` too; the next line we print then raises BrokenPipeError, which
    must not cut the shutdown short.
    """

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._broken = False

    def write(self, text: str) -> int:
        if not self._broken:
            try:
                self._stream.write(text)
            except BrokenPipeError:
                self._fall_silent()
        return len(text)

    def flush(self) -> None:
        if not self._broken:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._fall_silent()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self._stream, "encoding", "utf-8")

    def _fall_silent(self) -> None:
        self._broken = True
        # Python flushes stdout again at exit; pointed at /dev/null, that flush has nowhere to fail.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())
        os.close(devnull)


def http_ok(url: str) -> bool:
    """True when ``url`` answers 2xx within a second."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return 200 <= int(response.status) < 300
    except Exception:  # not up yet
        return False


def services(settings: Settings, workers: int, projectors: int = 1) -> list[Child]:
    """The service processes: N workers in one consumer group, and N projectors sharing the partitions (each
    partition's checkpoint is in Postgres, so whichever projector holds it resumes where the last one stopped)."""
    s = settings
    zixly = [sys.executable, "-m", "zixly"]
    logs = s.home / "logs"
    children = [
        Child(
            "receiver",
            [*zixly, "receiver"],
            f"{s.receiver_base_url}/health",
            logs / "receiver.log",
            [WantedPort(s.receiver_port, "the receiver", "ZIXLY_RECEIVER_PORT", s.receiver_host)],
        ),
        Child(
            "notifier",
            [*zixly, "notifier"],
            f"http://127.0.0.1:{s.notifier_metrics_port}/metrics",
            logs / "notifier.log",
            [WantedPort(s.notifier_metrics_port, "the notifier's metrics", "ZIXLY_NOTIFIER_METRICS_PORT")],
        ),
        Child(
            "dashboard",
            [*zixly, "dashboard"],
            f"http://{s.dashboard_host}:{s.dashboard_port}/",
            logs / "dashboard.log",
            [WantedPort(s.dashboard_port, "the dashboard", "ZIXLY_DASHBOARD_PORT", s.dashboard_host)]
            + (
                [WantedPort(s.dashboard_metrics_port, "the dashboard's metrics", "ZIXLY_DASHBOARD_METRICS_PORT")]
                if s.dashboard_metrics_port
                else []
            ),
        ),
    ]
    for index in range(projectors):
        port = s.projector_metrics_port + 10 * index
        name = "projector" if projectors == 1 else f"projector-{index + 1}"
        children.insert(
            1 + index,
            Child(
                name,
                [*zixly, "projector", "--metrics-port", str(port)],
                f"http://127.0.0.1:{port}/metrics",
                logs / f"{name}.log",
                [WantedPort(port, f"{name}'s metrics", "ZIXLY_PROJECTOR_METRICS_PORT")],
            ),
        )
    for index in range(workers):
        port = s.worker_metrics_port + 10 * index
        children.append(
            Child(
                f"worker-{index + 1}",
                [*zixly, "worker", "--metrics-port", str(port)],
                f"http://127.0.0.1:{port}/metrics",
                logs / f"worker-{index + 1}.log",
                [WantedPort(port, f"worker {index + 1}'s metrics", "ZIXLY_WORKER_METRICS_PORT")],
            )
        )
    return children


class Supervisor:
    def __init__(
        self, settings: Settings, console: Console, workers: int = 1, keep_stack: bool = False, projectors: int = 1
    ) -> None:
        self.settings = settings
        console.file = cast(IO[str], PipeSafeOutput(console.file))
        self.console = console
        self.stack = LocalStack(settings)
        self.children = services(settings, workers, projectors)
        self.keep_stack = keep_stack
        self.started_stack: list[str] = []
        self._stop = False
        self._login: tuple[str, str] | None = None

    def run(self) -> int:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._request_stop)
        try:
            # Before the stack starts, so that a taken port stops us before anything needs stopping.
            ensure_free(port for child in self.children for port in child.ports)
            with self.console.status("starting the stack") as status:
                self.started_stack = self.stack.up(
                    lambda message: status.update(message),
                    dies_with_parent=not self.keep_stack,
                    notice=lambda message: self.console.print(f"[yellow]![/] {message}"),
                )
                self.console.print("[green]✓[/] stack: Kafka, Postgres, topics, migrations")
                self._login = development_admin(self.settings) if self.settings.development else None
                self._start_children(status.update)
            self._print_ready()
            return self._watch()
        finally:
            self._shutdown()

    def _request_stop(self, *_: object) -> None:
        self._stop = True

    def _start_children(self, report: Callable[[str], None]) -> None:
        env = os.environ | {"ZIXLY_HOME": str(self.settings.home)}
        for child in self.children:
            child.process = spawn(child.command, child.log_path, env=env, dies_with_parent=signal.SIGTERM)
        deadline = time.monotonic() + 120
        for child in self.children:
            report(f"waiting for {child.name} ({child.ready_url})")
            while not http_ok(child.ready_url):
                assert child.process is not None
                if child.process.poll() is not None:
                    raise StackError(f"{child.name} exited with {child.process.returncode}; see {child.log_path}")
                if self._stop or time.monotonic() > deadline:
                    raise StackError(f"{child.name} did not become ready; see {child.log_path}")
                time.sleep(0.2)
            self.console.print(f"[green]✓[/] {child.name}")

    def _print_ready(self) -> None:
        s = self.settings
        table = Table(title="Zixly Pipeline is up", show_header=False)
        table.add_row("receiver", s.receiver_base_url, "/webhook/…  /health  /metrics  /docs")
        table.add_row("dashboard", f"http://{s.dashboard_host}:{s.dashboard_port}", "")
        table.add_row("worker metrics", f"http://127.0.0.1:{s.worker_metrics_port}/metrics", "")
        table.add_row("projector metrics", f"http://127.0.0.1:{s.projector_metrics_port}/metrics", "")
        table.add_row("notifier metrics", f"http://127.0.0.1:{s.notifier_metrics_port}/metrics", "")
        table.add_row("dashboard metrics", f"http://127.0.0.1:{s.dashboard_metrics_port}/metrics", "")
        table.add_row("kafka", s.kafka_bootstrap, f"topic {s.job_events_topic}")
        table.add_row("postgres", s.database.split("@")[-1], "")
        table.add_row("s3", s.s3_endpoint or "AWS", f"bucket {s.s3_bucket}")
        table.add_row("logs", str(s.home / "logs"), "")
        self.console.print(table)
        self._print_mode()
        self.console.print("Try it:")
        self.console.print(
            f"  curl -s -X POST {s.receiver_base_url}/webhook/generic-job -H 'Content-Type: application/json' "
            '-H \'X-Tenant-ID: demo\' -d \'{"job_type": "sleep", "parameters": {"seconds": 1}}\'',
            soft_wrap=True,
            highlight=False,
        )
        self.console.print(
            f"  curl -s -X POST {s.receiver_base_url}/webhook/trading-sweep -H 'Content-Type: application/json' "
            "-H 'X-Tenant-ID: demo' -d @examples/trading-sweep.json",
            soft_wrap=True,
            highlight=False,
        )
        self.console.print(
            "  then curl the status_url it returns with -H 'X-Tenant-ID: demo'. Ctrl-C stops everything."
        )

    def _print_mode(self) -> None:
        s = self.settings
        if self._login is not None:
            email, password = self._login
            self.console.print(
                "[yellow]development mode[/]: loopback only, development secrets, unsigned webhooks accepted from "
                "tenants that are not registered (`zixly up --production` behaves as production)"
            )
            self.console.print(
                f"Log in to the dashboard at http://{s.dashboard_host}:{s.dashboard_port}/login as [bold]{email}[/] "
                f"with password [bold]{password}[/] (platform admin; kept in {s.home / DEV_ADMIN_FILE})",
                highlight=False,
            )
            self.console.print(
                "In another shell, `export ZIXLY_ENV=development` before `zixly tenants …`, "
                "`zixly tokens …` or `zixly users …` against this stack."
            )
        else:
            self.console.print(
                "[green]production mode[/]: create the first platform admin with "
                "`zixly users create --role platform-admin --email you@example.com`"
            )

    def _watch(self) -> int:
        while not self._stop:
            for child in self.children:
                assert child.process is not None
                if child.process.poll() is not None:
                    self.console.print(
                        f"[red]✗[/] {child.name} exited with {child.process.returncode}; see {child.log_path}"
                    )
                    return 1
            time.sleep(0.5)
        return 0

    def _shutdown(self) -> None:
        running = [c for c in self.children if c.process is not None and c.process.poll() is None]
        if not running and not self.started_stack:
            return  # stopped before anything started: the error said all there is to say
        self.console.print("stopping…")
        for child in running:
            assert child.process is not None
            child.process.send_signal(signal.SIGTERM)
        for child in running:
            assert child.process is not None
            try:
                child.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                terminate(child.process.pid, timeout=0)
                child.process.wait()
        if self.started_stack and not self.keep_stack:
            self.stack.down()
        self.console.print("[green]stopped[/]")
