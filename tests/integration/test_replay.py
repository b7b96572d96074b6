"""Replays on the real stack, each on a read model and a topic of its own: a live projector and receiver keep going
while a replay rebuilds, verifies and swaps; readers never see a half-built table; a dropped read model comes back
identical; an interrupted replay resumes; a rollback brings the previous tables back, caught up."""

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import psycopg
import pytest

from kernel.settings import Settings
from projections.previous_version import rollback
from projections.replay import Replay
from read_model.migrate import upgrade
from tests.integration.conftest import METRICS_READY, RECEIVER_READY, Service, start_service
from tests.integration.isolated import isolated_read_model, table_contents
from zixly.synthetic_events import append_synthetic

ORDER = {
    "pipeline_jobs": "id",
    "job_events": "log_partition, log_offset",
    "trading_sweep_results": "job_id, ticker, strategy_type, parameters_key",
}


def service_env(settings: Settings) -> dict[str, str]:
    return {
        "DATABASE_URL": settings.database,
        "ZIXLY_JOB_EVENTS_TOPIC": settings.job_events_topic,
        "ZIXLY_TOPIC_PARTITIONS": str(settings.topic_partitions),
    }


@dataclass
class Live:
    settings: Settings
    receiver_url: str
    projector: Service
    accepted: list[str] = field(default_factory=list)

    def post(self, count: int) -> None:
        for _ in range(count):
            response = httpx.post(
                f"{self.receiver_url}/webhook/generic-job",
                json={"job_type": "noop"},
                headers={"X-Tenant-ID": "replayers"},
            )
            assert response.status_code == 202, response.text
            self.accepted.append(response.json()["job_id"])

    def wait_until_projected(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with psycopg.connect(self.settings.database) as connection:
                lag = connection.execute(
                    "SELECT count(*) FROM pipeline_jobs WHERE id = ANY(%s::uuid[])", (self.accepted,)
                ).fetchone()
            if lag is not None and lag[0] == len(self.accepted):
                return
            time.sleep(0.1)
        raise AssertionError(f"the live projector did not project every accepted webhook:\n{self.projector.log()}")


@pytest.fixture
def live(stack: Settings) -> Iterator[Live]:
    """A read model with 20,000 synthetic events, projected by a live projector, and a receiver appending to it."""
    with isolated_read_model(stack) as settings:
        asyncio.run(append_synthetic(settings, 20_000, seed=5))
        env = service_env(settings)
        projector = start_service(
            settings, "projector-replayed", ["projector", "--metrics-port", "0"], METRICS_READY, env
        )
        receiver = start_service(
            settings, "receiver-replayed", ["receiver"], RECEIVER_READY, env | {"ZIXLY_RECEIVER_PORT": "0"}
        )
        state = Live(settings, f"http://127.0.0.1:{receiver.port}", projector)
        try:
            state.post(5)
            state.wait_until_projected()
            wait_for_checkpoints_at_end(settings)
            yield state
        finally:
            for service in (receiver, projector):
                if service.process.poll() is None:
                    service.stop()


def wait_for_checkpoints_at_end(settings: Settings, timeout: float = 60) -> None:
    from read_model.projection_lag import projection_lag

    deadline = time.monotonic() + timeout
    while (lag := asyncio.run(projection_lag(settings)).lag) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert lag == 0, f"the projector is still {lag} events behind"


class ContinuousReader(threading.Thread):
    """Counts the live tables' rows over and over: a half-built table would show fewer rows than before."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True)
        self._settings = settings
        self.stopping = threading.Event()
        self.counts: list[tuple[int, int]] = []
        self.errors: list[str] = []

    def run(self) -> None:
        with psycopg.connect(self._settings.database, autocommit=True) as connection:
            while not self.stopping.is_set():
                try:
                    jobs = connection.execute("SELECT count(*) FROM pipeline_jobs").fetchone() or (0,)
                    events = connection.execute("SELECT count(*) FROM job_events").fetchone() or (0,)
                    self.counts.append((jobs[0], events[0]))
                except psycopg.Error as exc:
                    self.errors.append(repr(exc))


def test_a_replay_swaps_in_verified_tables_while_the_live_projector_keeps_up_and_readers_read_on(live: Live) -> None:
    reader = ContinuousReader(live.settings)
    reader.start()
    posting = threading.Thread(target=live.post, args=(40,), daemon=True)
    posting.start()
    try:
        report = asyncio.run(Replay(live.settings, processes=2).run())
    finally:
        posting.join()
        reader.stopping.set()
        reader.join()

    assert report.swapped
    assert all(check.matches for check in report.checks if report.comparable), report.checks
    assert not reader.errors, reader.errors[:3]
    assert len(reader.counts) > 10, "the reader kept reading through the replay"
    shrunk = [(a, b) for a, b in zip(reader.counts, reader.counts[1:], strict=False) if b < a]
    assert not shrunk, f"a reader saw fewer rows than a moment before: {shrunk[:3]}"

    # The live projector goes on, on the new tables.
    live.post(10)
    live.wait_until_projected()


def test_a_dropped_read_model_replays_to_tables_identical_to_the_live_ones(live: Live) -> None:
    live.projector.stop()
    before = table_contents(live.settings, ORDER)
    # Nothing of the database survives: a new one, migrated, filled from the log alone.
    with psycopg.connect(live.settings.database, autocommit=True) as connection:
        connection.execute("DROP SCHEMA public CASCADE")
        connection.execute("CREATE SCHEMA public")
    upgrade(live.settings)

    report = asyncio.run(Replay(live.settings, processes=2).run())
    assert report.swapped
    assert report.events >= 20_000
    after = table_contents(live.settings, ORDER)
    for table in ORDER:
        assert after[table] == before[table], f"{table} differs after dropping and replaying"


def test_an_interrupted_replay_resumes_from_where_it_stopped(live: Live) -> None:
    asyncio.run(append_synthetic(live.settings, 60_000, seed=6))
    wait_for_checkpoints_at_end(live.settings, timeout=120)
    env = (
        os.environ | service_env(live.settings) | {"ZIXLY_REPLAY_SEGMENT_EVENTS": "2000", "ZIXLY_REPLAY_PROCESSES": "1"}
    )
    interrupted = subprocess.Popen(
        [sys.executable, "-m", "zixly", "replay", "--no-swap", "--fresh"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        done_before = wait_for_shadow_progress(live.settings)
    finally:
        os.killpg(interrupted.pid, signal.SIGKILL)
        interrupted.wait()

    report = asyncio.run(Replay(live.settings, processes=2).run())
    assert report.resumed
    assert report.swapped
    assert report.comparable
    assert all(check.matches for check in report.checks), report.checks
    assert report.events <= sum(report.offsets.values()) - done_before + 1_000, "it did not start over"


def wait_for_shadow_progress(settings: Settings, timeout: float = 60) -> int:
    """Events the shadow holds once a replay has committed a few segments, but not all of them."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(settings.database, autocommit=True) as connection:
        while time.monotonic() < deadline:
            try:
                row = connection.execute(
                    "SELECT coalesce(sum(next_offset), 0) FROM zixly_shadow.replay_positions WHERE next_offset > 0"
                ).fetchone()
            except psycopg.errors.UndefinedTable:
                row = None
            if row is not None and row[0] >= 5_000:
                return int(row[0])
            time.sleep(0.02)
    raise AssertionError("the replay made no progress to interrupt")


def test_a_rollback_brings_the_previous_tables_back_caught_up_with_the_log(live: Live) -> None:
    asyncio.run(Replay(live.settings, processes=1).run())
    live.post(10)
    live.wait_until_projected()
    wait_for_checkpoints_at_end(live.settings)
    current = table_contents(live.settings, ORDER)

    report = asyncio.run(rollback(live.settings))
    assert report.swapped
    assert report.resumed
    assert table_contents(live.settings, ORDER) == current
    live.post(3)
    live.wait_until_projected()


def test_a_second_replay_at_the_same_time_is_told_another_one_runs(live: Live) -> None:
    from projections.replay import REPLAY_LOCK, ReplayBusy

    with psycopg.connect(live.settings.database, autocommit=True) as connection:
        connection.execute("SELECT pg_advisory_lock(%s)", (REPLAY_LOCK,))
        with pytest.raises(ReplayBusy, match="another replay"):
            asyncio.run(Replay(live.settings).run())
    assert uuid.UUID(live.accepted[0])


def test_a_projector_rebuilds_tables_another_version_built_or_refuses_when_told_to(stack: Settings) -> None:
    with isolated_read_model(stack) as settings:
        asyncio.run(append_synthetic(settings, 3_000, seed=8))
        env = service_env(settings)
        first = start_projector(settings, env)
        wait_for_checkpoints_at_end(settings)
        first.stop()
        built = table_contents(settings, ORDER)
        with psycopg.connect(settings.database, autocommit=True) as connection:
            connection.execute("UPDATE projection_versions SET version = 1 WHERE projection = 'jobs'")

        refusing = subprocess.run(
            [sys.executable, "-m", "zixly", "projector", "--metrics-port", "0"],
            capture_output=True,
            text=True,
            timeout=60,
            env=os.environ | env | {"ZIXLY_PROJECTOR_ON_VERSION_CHANGE": "refuse"},
        )
        assert refusing.returncode != 0
        assert "zixly replay jobs" in refusing.stderr + refusing.stdout

        rebuilding = start_projector(settings, env)
        try:
            deadline = time.monotonic() + 60
            while versions(settings).get("jobs") != 2 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert versions(settings)["jobs"] == 2, rebuilding.log()
            assert table_contents(settings, ORDER) == built
        finally:
            rebuilding.stop()


def start_projector(settings: Settings, env: dict[str, str]) -> Service:
    return start_service(settings, "projector-versioned", ["projector", "--metrics-port", "0"], METRICS_READY, env)


def versions(settings: Settings) -> dict[str, int]:
    with psycopg.connect(settings.database) as connection:
        return dict(connection.execute("SELECT projection, version FROM projection_versions").fetchall())
