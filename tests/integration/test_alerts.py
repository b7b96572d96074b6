"""A real Prometheus scrapes every service of a running pipeline and sees the stalled-projector alert fire.

The rules are the shipped ones with their waits (``for:``) cut to seconds, so that the test takes a minute, not
several; the expressions are the same.
"""

import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from kernel.settings import Settings
from tests.integration.conftest import METRICS_READY, RECEIVER_READY, Service, start_service
from tests.listening import listening_port
from zixly.stack.processes import terminate

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "rules" / "zixly.yml"
SERVICES = ("receiver", "worker", "projector", "notifier", "dashboard")
LOG_HEALTH = (
    'zixly_kafka_under_replicated_partitions{topic="zixly.job-events"} 0.0',
    'zixly_kafka_offline_partitions{topic="zixly.job-events"} 0.0',
    # The workers' group, once it has committed: the test sends a job first.
    'zixly_consumer_group_lag{group="zixly-processor",topic="zixly.job-events"}',
)


def rules_with_short_waits(folder: Path) -> Path:
    shortened = folder / "zixly.yml"
    shortened.write_text(re.sub(r"\bfor: \d+m\b", "for: 5s", RULES.read_text()))
    return shortened


@pytest.fixture
def services(stack: Settings) -> Iterator[dict[str, Service]]:
    env = {"ZIXLY_RECEIVER_PORT": "0", "ZIXLY_DASHBOARD_PORT": "0", "ZIXLY_LOG_HEALTH_SECONDS": "1"}
    started: dict[str, Service] = {}
    try:
        started["receiver"] = start_service(stack, "receiver", ["receiver"], RECEIVER_READY, env)
        env["ZIXLY_RECEIVER_PORT"] = str(started["receiver"].port)
        for name in ("worker", "projector", "notifier", "dashboard"):
            started[name] = start_service(
                stack, name, [name, "--metrics-port", "0"], METRICS_READY, env, listener=f"{name}-metrics"
            )
        yield started
    finally:
        for service in started.values():
            if service.process.poll() is None:
                service.stop()


@pytest.fixture
def prometheus(tmp_path: Path, services: dict[str, Service]) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is missing: deploy/bootstrap.sh --browser installs Debian's package")
    rules = rules_with_short_waits(tmp_path)
    targets = {name: service.url.removeprefix("http://").split("/", 1)[0] for name, service in services.items()}
    config: dict[str, Any] = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "900ms"},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {"job_name": name, "static_configs": [{"targets": [target]}]} for name, target in targets.items()
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = tmp_path / "prometheus.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                "--web.listen-address=127.0.0.1:0",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: listening_port(process.pid) is not None, 60, f"prometheus: {log}")
        url = f"http://127.0.0.1:{listening_port(process.pid)}"
        wait_until(lambda: httpx.get(f"{url}/-/ready", timeout=1).status_code == 200, 60, f"prometheus: {log}")
        yield url
    finally:
        terminate(process.pid, timeout=10)
        process.wait()


def wait_until(condition: Any, seconds: float, what: str | Callable[[], str]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"not within {seconds:.0f} s: {what if isinstance(what, str) else what()}")


def target_health(url: str) -> dict[str, str]:
    active = httpx.get(f"{url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
    return {target["labels"]["job"]: target["health"] for target in active}


def alert_state(url: str, name: str) -> str | None:
    alerts = httpx.get(f"{url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    states = [alert["state"] for alert in alerts if alert["labels"]["alertname"] == name]
    return states[0] if states else None


def test_a_stopped_projector_makes_the_stalled_alert_pending_then_firing(
    prometheus: str, services: dict[str, Service]
) -> None:
    wait_until(lambda: set(target_health(prometheus).values()) == {"up"}, 60, "every service scraped")
    assert set(target_health(prometheus)) == set(SERVICES)
    # The projector reports the log's health too: replicas and consumer groups' lag (of the workers' group once it
    # has committed, so a job goes through first).
    receiver = services["receiver"].url.removesuffix("/health")
    accepted = httpx.post(
        f"{receiver}/webhook/generic-job",
        headers={"X-Tenant-ID": "alerts"},
        timeout=10,
        json={"job_type": "noop", "parameters": {}},
    )
    assert accepted.status_code == 202, accepted.text
    seen: dict[str, str] = {}

    def log_health_reported() -> bool:
        seen["metrics"] = httpx.get(services["projector"].url, timeout=5).text
        return all(gauge in seen["metrics"] for gauge in LOG_HEALTH)

    def what_it_reports() -> str:
        lines = seen.get("metrics", "").splitlines()
        reported = [line for line in lines if line.startswith(("zixly_kafka", "zixly_consumer"))]
        return f"the projector's log-health gauges {LOG_HEALTH}; it reports: {reported}"

    wait_until(log_health_reported, 60, what_it_reports)
    time.sleep(8)  # longer than the shortened wait: an alert that fires on a healthy pipeline would show now
    assert alert_state(prometheus, "ZixlyProjectorStalled") is None

    services["projector"].stop()

    seen: list[str | None] = []

    def fired() -> bool:
        state = alert_state(prometheus, "ZixlyProjectorStalled")
        if not seen or seen[-1] != state:
            seen.append(state)
        return state == "firing"

    wait_until(fired, 60, "the stalled-projector alert firing")
    assert seen[-2:] == ["pending", "firing"], seen
    assert target_health(prometheus)["projector"] == "down"
