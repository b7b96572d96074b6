"""`zixly up` leaves nothing behind however it ends, and says in one line why it cannot start.

Each run is a whole stack of its own (Kafka, Postgres, S3, the five services) in a folder and on ports of its own;
the process table, not the supervisor's word, says what is left.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kernel.settings import Settings
from tests.conftest import ROOT
from tests.ports import reserve_port
from zixly.stack.processes import command_line, pid_alive

UP_TIMEOUT = 240  # a first start builds nothing (jars and S3 binary are cached) but starts three servers and five


def own_stack_environment(home: Path) -> dict[str, str]:
    ports = {
        name: str(reserve_port())
        for name in (
            "ZIXLY_KAFKA_PORT",
            "ZIXLY_KAFKA_CONTROLLER_PORT",
            "ZIXLY_POSTGRES_PORT",
            "ZIXLY_S3_PORT",
            "ZIXLY_RECEIVER_PORT",
            "ZIXLY_DASHBOARD_PORT",
            "ZIXLY_PROJECTOR_METRICS_PORT",
            "ZIXLY_NOTIFIER_METRICS_PORT",
            "ZIXLY_WORKER_METRICS_PORT",
            "ZIXLY_DASHBOARD_METRICS_PORT",
        )
    }
    return os.environ | ports | {"ZIXLY_HOME": str(home), "ZIXLY_KAFKA_HEAP": "384m"}


def descendants(root: int) -> set[int]:
    """Every process whose chain of parents reaches ``root``."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        children = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= children
        frontier = children
    return found


def wait_for_line(log: Path, text: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + UP_TIMEOUT
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        if process.poll() is not None:
            pytest.fail(f"zixly up ended with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.5)
    pytest.fail(f"zixly up was not up within {UP_TIMEOUT} s:\n{log.read_text(errors='replace')[-3000:]}")


def run_one_job(env: dict[str, str]) -> str:
    """A job through the pipeline that zixly up runs (development mode takes an unsigned webhook)."""
    receiver = f"http://127.0.0.1:{env['ZIXLY_RECEIVER_PORT']}"
    headers = {"X-Tenant-ID": "demo"}
    accepted = httpx.post(
        f"{receiver}/webhook/generic-job", headers=headers, timeout=10, json={"job_type": "noop", "parameters": {}}
    )
    assert accepted.status_code == 202, accepted.text
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = httpx.get(accepted.json()["status_url"], headers=headers, timeout=10)
        if status.status_code == 200 and status.json()["status"] == "COMPLETED":
            return str(accepted.json()["job_id"])
        time.sleep(0.3)
    pytest.fail(f"the job did not complete: {status.text}")


def left_running(pids: set[int], within: float) -> set[int]:
    deadline = time.monotonic() + within
    while (alive := {pid for pid in pids if pid_alive(pid)}) and time.monotonic() < deadline:
        time.sleep(0.5)
    return alive


def describe(pids: set[int]) -> str:
    lines = []
    for pid in sorted(pids):
        lines.append(f"{pid}: {command_line(pid)[:160] or 'gone'}")
    return "\n".join(lines)


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "zixly"
    # A failing test must not leave its stack running for the rest of the suite.
    home = tmp_path / "zixly"
    for pidfile in [*(home / "run").glob("*.pid"), home / "postgres" / "data" / "postmaster.pid"]:
        with contextlib.suppress(OSError, ValueError, IndexError):
            os.kill(int(pidfile.read_text().split()[0]), signal.SIGKILL)


@pytest.mark.usefixtures("stack")  # the jars and the S3 binary, built once into the shared cache
def test_killing_zixly_up_with_sigkill_stops_every_process_it_started(home: Path) -> None:
    log = home.parent / "up.log"
    env = own_stack_environment(home)
    with open(log, "wb") as out:
        up = subprocess.Popen(
            [sys.executable, "-m", "zixly", "up"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_line(log, "Zixly Pipeline is up", up)
        started = descendants(up.pid)
        names = " ".join(command_line(pid) for pid in started)
        for server in (
            "kafka.Kafka",
            "bin/postgres",
            "gofakes3",
            "zixly receiver",
            "zixly worker",
            "zixly projector",
            "zixly notifier",
            "zixly dashboard",
        ):
            assert server in names, f"{server} is not among the processes of zixly up:\n{describe(started)}"

        job_id = run_one_job(env)
        followed = subprocess.run(
            [sys.executable, "-m", "zixly", "logs", "--job", job_id, "--json"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        services = [json.loads(line)["service"] for line in followed.stdout.splitlines()]
        assert {"receiver", "processor", "projector"} <= set(services), followed.stdout + followed.stderr

        up.kill()
        up.wait()

        left = left_running(started, within=90)
        assert not left, f"left running after SIGKILL of zixly up:\n{describe(left)}"
    finally:
        if up.poll() is None:
            up.kill()


@pytest.mark.usefixtures("stack")
def test_ctrl_c_on_make_run_piped_into_tee_stops_every_process(home: Path) -> None:
    log = home.parent / "run.log"
    # As a terminal runs it: one process group (make, zixly up, tee), and Ctrl-C sends SIGINT to all of it, so
    # tee is gone when zixly up prints that it is stopping.
    shell = subprocess.Popen(
        ["bash", "-c", f"make -s run 2>&1 | tee {log}"],
        cwd=ROOT,
        env=own_stack_environment(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_line(log, "Zixly Pipeline is up", shell)
        started = descendants(shell.pid)
        assert "zixly dashboard" in describe(started)

        os.killpg(shell.pid, signal.SIGINT)

        left = left_running(started, within=90)
        assert not left, f"left running after Ctrl-C on make run | tee:\n{describe(left)}"
    finally:
        if shell.poll() is None:
            os.killpg(shell.pid, signal.SIGKILL)


def test_a_port_in_use_is_one_line_naming_the_port_and_the_setting(home: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        env = own_stack_environment(home) | {"ZIXLY_RECEIVER_PORT": str(port)}

        result = subprocess.run(
            [sys.executable, "-m", "zixly", "up"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )

    said = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode == 1
    assert len(said) == 1, said
    assert f"port {port} on 127.0.0.1, wanted by the receiver, is in use" in said[0]
    assert "ZIXLY_RECEIVER_PORT" in said[0]
    assert f"pid {os.getpid()}" in said[0]  # who holds it: this test
    assert not (home / "run").exists()  # nothing was started


def test_the_stacks_own_postgres_port_in_use_is_one_line_too(home: Path, stack: Settings) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        env = own_stack_environment(home) | {
            "ZIXLY_POSTGRES_PORT": str(port),
            "ZIXLY_KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap,  # the suite's broker: only Postgres is ours
        }

        result = subprocess.run(
            [sys.executable, "-m", "zixly", "stack", "up"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    said = [line for line in result.stderr.splitlines() if line.strip()]
    assert said == [
        f"zixly stack up: port {port} on 127.0.0.1, wanted by Postgres, is in use by another program "
        f"(held by pid {os.getpid()}, {Path('/proc/self/comm').read_text().strip()}): "
        "stop it, or set ZIXLY_POSTGRES_PORT to a free port"
    ]
