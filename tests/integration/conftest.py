"""The real stack for integration tests: Kafka and Postgres started once per session, services per module."""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kernel.settings import Settings, load_settings
from zixly.stack.local import LocalStack
from zixly.stack.processes import free_port, spawn, terminate
from zixly.supervisor import http_ok


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings()


@pytest.fixture(scope="session")
def stack(settings: Settings) -> Iterator[Settings]:
    """Kafka (KRaft, from jars) and Postgres, as `zixly stack up` runs them; stopped again if we started them."""
    local = LocalStack(settings)
    started = local.up()
    yield settings
    if started:
        local.down()


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    url: str

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        terminate(self.process.pid, timeout=20)
        self.process.wait()


def start_service(
    settings: Settings,
    name: str,
    args: list[str],
    ready_url: str,
    env: dict[str, str],
    wait_ok: bool = True,
    memory_limit: int | None = None,
) -> Service:
    """`python -m zixly <args>` as a real process, waited on until ``ready_url`` answers; with ``memory_limit``
    (bytes of address space) a process under attack fails alone instead of taking the machine with it."""
    log_path = settings.home / "logs" / "tests" / f"{name}-{time.time_ns()}.log"
    command = [sys.executable, "-m", "zixly", *args]
    if memory_limit is not None:
        limited = (
            "import os, resource, sys; resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[1]),) * 2); "
            "os.execv(sys.argv[2], sys.argv[2:])"
        )
        command = [sys.executable, "-c", limited, str(memory_limit), *command]
    # Stopped with the suite however it ends: a service orphaned by an interrupted run stayed in the workers' group
    # on the shared chunk and retry topics, and took their partitions from the next run's workers.
    process = spawn(command, log_path, env=os.environ | env, dies_with_parent=signal.SIGTERM)
    service = Service(name, process, log_path, ready_url)
    deadline = time.monotonic() + 60
    while True:
        if wait_ok and http_ok(ready_url):
            return service
        if not wait_ok:
            try:
                urllib.request.urlopen(ready_url, timeout=1)
                return service
            except urllib.error.HTTPError:
                return service
            except Exception:  # connection refused: not up yet
                pass
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{service.log()}")
        if time.monotonic() > deadline:
            service.stop()
            raise RuntimeError(f"{name} not ready at {ready_url}:\n{service.log()}")
        time.sleep(0.2)


def metric_value(metrics_url: str, name: str, labels: dict[str, str] | None = None) -> float | None:
    """The sample ``name`` with exactly ``labels`` that the service behind ``metrics_url`` exposes now, if any."""
    for family in text_string_to_metric_families(httpx.get(metrics_url, timeout=5).text):
        for sample in family.samples:
            if sample.name == name and sample.labels == (labels or {}):
                return float(sample.value)
    return None


def owned_partitions(metrics_url: str, topic: str) -> int:
    """How many of ``topic``'s partitions the worker behind ``metrics_url`` owns and is ready to run."""
    return int(metric_value(metrics_url, "zixly_worker_assigned_partitions", {"topic": topic}) or 0)


def wait_until_shared(workers: list[Service], topic: str, partitions: int, timeout: float = 90) -> None:
    """Waits for the group's rebalances to end: every worker owns some of ``topic``'s partitions and together they
    own them all. A test that starts while a worker is still joining measures the rebalance, not the pipeline."""
    deadline = time.monotonic() + timeout
    while True:
        owned = [owned_partitions(worker.url, topic) for worker in workers]
        if all(owned) and sum(owned) == partitions:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{topic}'s {partitions} partitions not shared by the workers: {owned}")
        time.sleep(0.1)


@dataclass
class RunningPipeline:
    receiver_url: str
    worker_metrics_url: str
    projector_metrics_url: str


@pytest.fixture(scope="module")
def pipeline(stack: Settings) -> Iterator[RunningPipeline]:
    """Receiver, one worker and the projector as separate processes, as `zixly up` runs them."""
    receiver_port, worker_port, projector_port = free_port(), free_port(), free_port()
    env = {"ZIXLY_RECEIVER_PORT": str(receiver_port)}
    services = [
        start_service(stack, "receiver", ["receiver"], f"http://127.0.0.1:{receiver_port}/health", env),
        start_service(
            stack,
            "worker",
            ["worker", "--metrics-port", str(worker_port)],
            f"http://127.0.0.1:{worker_port}/metrics",
            env,
        ),
        start_service(
            stack,
            "projector",
            ["projector", "--metrics-port", str(projector_port)],
            f"http://127.0.0.1:{projector_port}/metrics",
            env,
        ),
    ]
    try:
        yield RunningPipeline(
            receiver_url=f"http://127.0.0.1:{receiver_port}",
            worker_metrics_url=f"http://127.0.0.1:{worker_port}/metrics",
            projector_metrics_url=f"http://127.0.0.1:{projector_port}/metrics",
        )
    finally:
        for service in services:
            service.stop()


@pytest.fixture(scope="module")
def golden(stack: Settings) -> Iterator[Settings]:
    """A module's own read model holding the committed golden log, projected as the live projector does."""
    from tests.integration.isolated import golden_read_model

    with golden_read_model(stack) as settings:
        yield settings


PLATFORM_ADMIN = "root@zixly.test"


@pytest.fixture(scope="module")
def golden_admin(golden: Settings) -> str:
    """A platform admin of the golden read model (who sees every tenant's rows)."""
    from schemas.access import Role
    from tests.identities import create_user

    return create_user(golden, PLATFORM_ADMIN, Role.PLATFORM_ADMIN, None)


@pytest.fixture
async def api(golden: Settings, golden_admin: str) -> AsyncIterator[httpx.AsyncClient]:
    """The read-only API over the golden read model, in process, its listener and engine started and stopped,
    logged in as a platform admin."""
    from dashboard.api import create_api
    from tests.identities import log_in

    app = create_api(golden)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client,
    ):
        assert (await log_in(client, golden_admin)).status_code == 303
        yield client
