"""The real stack for integration tests: Kafka and Postgres started once per session, services per module."""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kernel.listening import read_ready_file
from kernel.settings import Settings, load_settings
from zixly.stack.local import LocalStack
from zixly.stack.processes import spawn, terminate
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


RECEIVER_READY = "http://127.0.0.1:{port}/health"
METRICS_READY = "http://127.0.0.1:{port}/metrics"
DASHBOARD_READY = "http://127.0.0.1:{port}/api/health"
# The listener whose port a service's ready URL names, by the service's command.
MAIN_LISTENER = {
    "receiver": "receiver",
    "worker": "worker-metrics",
    "projector": "projector-metrics",
    "notifier": "notifier-metrics",
    "dashboard": "dashboard",
}


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    url: str
    ports: dict[str, int] = field(default_factory=dict)
    port: int = 0

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
    env: Mapping[str, str],
    wait_ok: bool = True,
    memory_limit: int | None = None,
    listener: str | None = None,
) -> Service:
    """`python -m zixly <args>` as a real process, waited on until ``ready_url`` answers; with ``memory_limit``
    (bytes of address space) a process under attack fails alone instead of taking the machine with it.

    Ports set to 0 are chosen by the system: the service reports each listener's port in its ready file, and
    ``{port}`` in ``ready_url`` is its main listener's (``listener``, or the one of its command)."""
    log_path = settings.home / "logs" / "tests" / f"{name}-{time.time_ns()}.log"
    ready_file = log_path.with_suffix(".ready")
    command = [sys.executable, "-m", "zixly", *args]
    if memory_limit is not None:
        limited = (
            "import os, resource, sys; resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[1]),) * 2); "
            "os.execv(sys.argv[2], sys.argv[2:])"
        )
        command = [sys.executable, "-c", limited, str(memory_limit), *command]
    # Stopped with the suite however it ends: a service orphaned by an interrupted run stayed in the workers' group
    # on the shared chunk and retry topics, and took their partitions from the next run's workers.
    process = spawn(
        command,
        log_path,
        env=os.environ | dict(env) | {"ZIXLY_READY_FILE": str(ready_file)},
        dies_with_parent=signal.SIGTERM,
    )
    service = Service(name, process, log_path, ready_url)
    main = listener or MAIN_LISTENER.get(args[0], args[0])
    deadline = time.monotonic() + 60
    while True:
        service.ports = read_ready_file(ready_file)
        service.port = service.ports.get(main, 0)
        service.url = ready_url.replace("{port}", str(service.port))
        if (service.port or "{port}" not in ready_url) and answers(service.url, wait_ok):
            return service
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{service.log()}")
        if time.monotonic() > deadline:
            service.stop()
            raise RuntimeError(f"{name} not ready at {service.url}:\n{service.log()}")
        time.sleep(0.1)


def answers(url: str, wait_ok: bool) -> bool:
    """Whether ``url`` answers 2xx (or, unless ``wait_ok``, answers at all)."""
    if wait_ok:
        return http_ok(url)
    try:
        urllib.request.urlopen(url, timeout=1)
    except urllib.error.HTTPError:
        return True
    except Exception:  # connection refused: not up yet
        return False
    return True


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
    receiver = start_service(stack, "receiver", ["receiver"], RECEIVER_READY, {"ZIXLY_RECEIVER_PORT": "0"})
    env = {"ZIXLY_RECEIVER_PORT": str(receiver.port)}
    worker = start_service(stack, "worker", ["worker", "--metrics-port", "0"], METRICS_READY, env)
    projector = start_service(stack, "projector", ["projector", "--metrics-port", "0"], METRICS_READY, env)
    services = [receiver, worker, projector]
    try:
        yield RunningPipeline(
            receiver_url=f"http://127.0.0.1:{receiver.port}",
            worker_metrics_url=worker.url,
            projector_metrics_url=projector.url,
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
