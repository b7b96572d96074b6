"""A replicated three-node Kafka cluster of a test's own, started as a user does (`zixly stack up --brokers 3`),
in a folder and on ports of its own; Postgres and S3 are the suite's."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kernel.settings import Settings, load_settings
from tests.conftest import ROOT
from tests.ports import reserve_ports
from zixly.stack.kafka_broker import KafkaBroker
from zixly.stack.processes import PidFile, pid_alive

NODES = 3


def cluster_environment(home: Path, stack: Settings, topic: str, version: str | None) -> dict[str, str]:
    return (
        os.environ
        | ({"ZIXLY_KAFKA_VERSION": version} if version else {})
        | {
            "ZIXLY_HOME": str(home),
            # Node n listens on the port plus 2(n - 1).
            "ZIXLY_KAFKA_PORT": str(reserve_ports(NODES, step=2)),
            "ZIXLY_KAFKA_CONTROLLER_PORT": str(reserve_ports(NODES, step=2)),
            "ZIXLY_KAFKA_BROKERS": str(NODES),
            "ZIXLY_KAFKA_HEAP": "384m",
            "ZIXLY_DATABASE_URL": stack.database,
            "ZIXLY_S3_ENDPOINT_URL": stack.s3_endpoint or "aws",
            "ZIXLY_JOB_EVENTS_TOPIC": topic,
        }
    )


def settings_of(env: dict[str, str]) -> Settings:
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return load_settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def replicated_cluster(
    stack: Settings, home: Path, topic: str = "zixly.cluster-events", version: str | None = None
) -> Iterator[dict[str, str]]:
    """The cluster's environment for clients and services (``version``: its Kafka release, else the default);
    every node is stopped afterwards, whatever happened."""
    env = cluster_environment(home, stack, topic, version)
    # The flag, not the environment, is what an operator types: the stack command must honour it.
    command_env = {key: value for key, value in env.items() if key != "ZIXLY_KAFKA_BROKERS"}
    up = subprocess.run(
        [sys.executable, "-m", "zixly", "stack", "up", "--brokers", str(NODES)],
        cwd=ROOT,
        env=command_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield env
    finally:
        down = subprocess.run(
            [sys.executable, "-m", "zixly", "stack", "down"],
            cwd=ROOT,
            env=command_env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        for pidfile in (home / "run").glob("kafka*.pid"):
            if (pid := PidFile(pidfile).read()) and pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        assert down.returncode == 0, down.stdout + down.stderr


def node(env: dict[str, str], number: int) -> KafkaBroker:
    return KafkaBroker(settings_of(env), number)


def stop_node(env: dict[str, str], number: int, sig: signal.Signals) -> None:
    """SIGKILL (a crash) or SIGTERM (a stop), and wait until the process is gone."""
    broker = node(env, number)
    pid = broker.pidfile.alive_pid()
    assert pid is not None, f"node {number} does not run"
    os.kill(pid, sig)
    deadline = time.monotonic() + 60
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not pid_alive(pid), f"node {number} did not stop"


def start_node(env: dict[str, str], number: int) -> None:
    assert node(env, number).launch(), f"node {number} was running already"
