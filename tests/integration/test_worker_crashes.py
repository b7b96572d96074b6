"""One outcome per job whatever crashes: a worker killed with SIGKILL after some of its jobs have finished, but
before their requests' offsets are committed, leaves a successor that runs only what was truly in flight.

The log is counted, not the read model: the projection keeps a finished row finished, so a second JobCompleted
would hide there while every other reader of the log (the notifier, anyone counting outcomes) would see two."""

import asyncio
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import psycopg
import pytest

from kernel.kafka import ensure_topics
from kernel.settings import Settings
from kernel.topics import TopicSpec
from processors.finished_requests import JOB_ENDS
from tests.integration.conftest import METRICS_READY, RECEIVER_READY, Service, start_service
from tests.integration.isolated import isolated_read_model, records_in_the_log
from tests.measurements import report

JOBS = 300
LONG_JOBS = 6  # 8 s each, submitted first: they hold back the commit of their partitions past them
LONG_SECONDS, SHORT_SECONDS = 8.0, 0.3


@pytest.fixture(scope="module")
def own_log(stack: Settings) -> Iterator[Settings]:
    """A topic and read model of the module's own, so that the whole log can be counted."""
    with isolated_read_model(stack, partitions=6) as settings:
        yield settings


def environment(settings: Settings) -> dict[str, str]:
    return {
        "DATABASE_URL": settings.database,
        "ZIXLY_JOB_EVENTS_TOPIC": settings.job_events_topic,
        "ZIXLY_TOPIC_PARTITIONS": str(settings.topic_partitions),
        "ZIXLY_PROJECTOR_NAME": settings.projector_name,
        "ZIXLY_RECEIVER_PORT": "0",
        "ZIXLY_WORKER_CONCURRENCY": "16",
    }


def start_worker(settings: Settings, env: dict[str, str], name: str) -> Service:
    return start_service(settings, name, ["worker", "--metrics-port", "0"], METRICS_READY, env)


@contextmanager
def pipeline(settings: Settings, env: dict[str, str], name: str) -> Iterator[list[Service]]:
    """A receiver, a projector and one worker; the list takes the workers started later, and all stop at the end.
    ``env`` learns the receiver's port."""
    receiver = start_service(settings, f"receiver-{name}", ["receiver"], RECEIVER_READY, env)
    env["ZIXLY_RECEIVER_PORT"] = str(receiver.port)
    projector = start_service(settings, f"projector-{name}", ["projector", "--metrics-port", "0"], METRICS_READY, env)
    workers = [start_worker(settings, env, f"worker-{name}-1")]
    try:
        yield workers
    finally:
        for service in [receiver, projector, *workers]:
            if service.process.poll() is None:
                service.stop()


def own_records(settings: Settings, job_ids: list[str]) -> Counter[tuple[bytes, str]]:
    """The log's records per (job, event type) of these jobs only: the retries topic is shared, and a retry left
    there by an earlier run against the same local stack may land its outcome in a test's topic."""
    ours = {job_id.encode() for job_id in job_ids}
    return Counter(
        {(key, event_type): n for (key, event_type), n in records_in_the_log(settings).items() if key in ours}
    )


def statuses(settings: Settings, job_ids: list[str]) -> Counter[str]:
    with psycopg.connect(settings.database) as connection:
        rows = connection.execute(
            "SELECT status FROM pipeline_jobs WHERE id = ANY(%s)", ([uuid.UUID(j) for j in job_ids],)
        ).fetchall()
    return Counter(status for (status,) in rows)


def test_a_worker_killed_after_jobs_finished_but_before_their_commit_leaves_one_outcome_per_job(
    own_log: Settings,
) -> None:
    env = environment(own_log)
    with pipeline(own_log, env, "crash") as workers:
        tenant = f"t-{uuid.uuid4().hex[:8]}"
        with httpx.Client(base_url=f"http://127.0.0.1:{env['ZIXLY_RECEIVER_PORT']}", timeout=30) as client:

            def submit(n: int) -> str:
                seconds = LONG_SECONDS if n < LONG_JOBS else SHORT_SECONDS
                body = {"job_type": "sleep", "parameters": {"seconds": seconds, "progress_steps": 0}}
                answer = client.post("/webhook/generic-job", json=body, headers={"X-Tenant-ID": tenant})
                assert answer.status_code == 202, answer.text
                return str(answer.json()["job_id"])

            job_ids = [submit(n) for n in range(LONG_JOBS)]
            with ThreadPoolExecutor(8) as pool:
                job_ids += list(pool.map(submit, range(LONG_JOBS, JOBS)))
        # Once the short jobs behind a long one on its partition have finished, their outcomes are in the log, but
        # no offset past the long job can be committed while it runs: the jobs a successor used to run again.
        wait_for(own_log, job_ids[LONG_JOBS:], "COMPLETED", 60)
        os.kill(workers[0].process.pid, signal.SIGKILL)
        workers[0].process.wait()
        workers.append(start_worker(own_log, env, "worker-crash-2"))

        wait_for(own_log, job_ids, "COMPLETED", 180)
        assert statuses(own_log, job_ids) == Counter({"COMPLETED": JOBS})
        records = own_records(own_log, job_ids)
        outcomes: Counter[bytes] = Counter()
        for (key, event_type), n in records.items():
            if event_type in JOB_ENDS:
                outcomes[key] += n
        twice = {key: n for key, n in outcomes.items() if n > 1}
        assert not twice, f"{len(twice)} of {JOBS} jobs have more than one outcome in the log"
        assert sum(outcomes.values()) == JOBS
        restarted = sum(1 for (_, event_type), n in records.items() if event_type == "JobStarted" and n > 1)
        # Only the jobs in flight at the kill may start again: at most the worker's 16 slots.
        assert restarted <= 16, f"{restarted} jobs started more than once"
        report(
            f"worker killed mid-run: {JOBS} jobs, 0 with two outcomes in the log, {restarted} started again (those "
            "in flight at the kill)"
        )


RETRIED_JOBS = 40


def test_a_worker_killed_after_retries_finished_but_before_their_commit_runs_none_of_them_again(
    own_log: Settings,
) -> None:
    # One retry partition of the test's own, so that a long retry at its head holds back the commit of every retry
    # behind it, as a crash finds them.
    settings = own_log.replaced(retries_topic=f"{own_log.job_events_topic}-retries")
    asyncio.run(ensure_topics(settings, [TopicSpec(settings.retries_topic, 1)]))
    env = environment(settings) | {
        "ZIXLY_RETRIES_TOPIC": settings.retries_topic,
        "ZIXLY_RETRY_BASE_DELAY_SECONDS": "0.2",
    }
    with pipeline(settings, env, "retry-crash") as workers:
        tenant = f"t-{uuid.uuid4().hex[:8]}"
        with httpx.Client(base_url=f"http://127.0.0.1:{env['ZIXLY_RECEIVER_PORT']}", timeout=30) as client:

            def submit(seconds: float) -> str:
                body = {
                    "job_type": "sleep",
                    "parameters": {"seconds": seconds, "progress_steps": 0, "fail_attempts": 1},
                }
                answer = client.post("/webhook/generic-job", json=body, headers={"X-Tenant-ID": tenant})
                assert answer.status_code == 202, answer.text
                return str(answer.json()["job_id"])

            # Each attempt of the long job takes 6 s: its retry runs from about 6 s to 12 s, at the head of the
            # retry partition; the short jobs' retries come after it and finish at once.
            long_job = submit(6.0)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and attempt_running(settings, long_job) < 2:
                time.sleep(0.1)
            assert attempt_running(settings, long_job) == 2
            short_jobs = [submit(0.1) for _ in range(RETRIED_JOBS)]
        wait_for(settings, short_jobs, "COMPLETED", 30)
        assert statuses(settings, [long_job]) == Counter({"RUNNING": 1}), "the long job's retry is still running"
        os.kill(workers[0].process.pid, signal.SIGKILL)
        workers[0].process.wait()
        workers.append(start_worker(settings, env, "worker-retry-crash-2"))
        wait_for(settings, [long_job], "COMPLETED", 120)

        records = own_records(settings, short_jobs)
        completed_twice = sum(1 for (_, event_type), n in records.items() if event_type == "JobCompleted" and n > 1)
        started = Counter(n for (_, event_type), n in records.items() if event_type == "JobStarted")
        assert completed_twice == 0, f"{completed_twice} of {RETRIED_JOBS} retried jobs completed twice"
        assert started == Counter({2: RETRIED_JOBS}), "each short job ran its two attempts once each"
        report(
            f"worker killed behind a running retry: {RETRIED_JOBS} retried jobs finished before the kill, 0 ran again"
        )


def wait_for(settings: Settings, job_ids: list[str], status: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and statuses(settings, job_ids)[status] < len(job_ids):
        time.sleep(0.2)
    assert statuses(settings, job_ids)[status] == len(job_ids), statuses(settings, job_ids)


def attempt_running(settings: Settings, job_id: str) -> int:
    """The attempt the job is running now (0 when it is not running)."""
    with psycopg.connect(settings.database) as connection:
        row = connection.execute(
            "SELECT attempts FROM pipeline_jobs WHERE id = %s AND status = 'RUNNING'", (uuid.UUID(job_id),)
        ).fetchone()
    return int(row[0]) if row else 0
