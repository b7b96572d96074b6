"""A chaos loop: steady load on the real pipeline while workers are killed with SIGKILL and replaced, then a count of
what the log says happened to every job.

Used by tests/integration/test_chaos.py (60 s in CI, a kill every 5 s); its load, its services' environment and its
count of finished jobs also by tests/integration/test_broker_faults.py. The counts come from the log itself, so a
second outcome or notification cannot hide behind the projection's idempotence.
"""

import asyncio
import json
import os
import random
import re
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from kernel.kafka import ensure_topics
from kernel.log_reader import LogReader
from kernel.settings import Settings
from kernel.topics import project_topics
from processors.finished_requests import JOB_ENDS
from schemas.codec import EVENT_TYPE_HEADER, decode, header
from schemas.events import SweepPlanned
from tests.integration.conftest import METRICS_READY, Service, start_service
from tests.integration.isolated import records_in_the_log
from tests.producers.test_signed_webhooks import signed


@dataclass
class ChaosReport:
    requested: int = 0
    accepted: int = 0
    completed: int = 0
    failed: int = 0
    lost: int = 0
    duplicate_outcomes: int = 0
    re_executions: int = 0
    kills: int = 0
    worker_kills: int = 0
    projector_kills: int = 0
    notifier_kills: int = 0
    duplicate_notifications: int = 0
    """Two deliveries of one outcome with different keys: a receiver could not tell them apart."""
    notifications_resent: int = 0
    """A delivery in flight at a notifier's kill sent again, with the same Idempotency-Key (at least once)."""
    notifications_delivered: int = 0
    sweeps: int = 0
    duplicate_sweep_plans: int = 0
    sweep_chunks: int = 0
    sweep_chunks_recorded: int = 0
    """More than ``sweep_chunks``: chunks recomputed (those in flight at a kill may be; their results fold once)."""

    twice: list[str] = field(default_factory=list)
    """The jobs with more than one outcome, for the failure's story."""

    def table(self) -> str:
        rows = [(name.replace("_", " "), value) for name, value in vars(self).items() if isinstance(value, int)]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value:>8,}" for name, value in rows)


SWEEP = json.loads((Path(__file__).resolve().parents[1] / "examples" / "trading-sweep.json").read_text())


@dataclass
class Load:
    """Signed 0.2 s sleep jobs at ``per_second`` from a thread, and a trading sweep at each of ``sweeps_at`` (seconds
    from the start); the accepted job ids."""

    receiver_url: str
    tenant_id: str
    secret: str
    per_second: float
    sweeps_at: tuple[float, ...] = ()
    accepted: list[str] = field(default_factory=list)
    sweeps: list[str] = field(default_factory=list)
    sent: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        interval = 1.0 / self.per_second
        started = time.monotonic()
        sweeps_due = sorted(self.sweeps_at)
        with httpx.Client(base_url=self.receiver_url, timeout=30) as client:
            next_at = time.monotonic()
            while not self._stop.is_set():
                if sweeps_due and time.monotonic() - started >= sweeps_due[0]:
                    sweeps_due.pop(0)
                    if (job_id := self._send(client, "/webhook/trading-sweep", SWEEP)) is not None:
                        self.sweeps.append(job_id)
                body = {"job_type": "sleep", "parameters": {"seconds": 0.2, "progress_steps": 0}}
                self._send(client, "/webhook/generic-job", body)
                next_at += interval
                time.sleep(max(0.0, next_at - time.monotonic()))

    def _send(self, client: httpx.Client, path: str, body: dict[str, Any]) -> str | None:
        content, headers = signed(body, self.secret, f"chaos_{uuid.uuid4().hex}", tenant=self.tenant_id)
        self.sent += 1
        answer = client.post(path, content=content, headers=headers)
        if answer.status_code != 202:
            return None
        job_id = str(answer.json()["job_id"])
        self.accepted.append(job_id)
        return job_id

    def stop(self) -> None:
        self._stop.set()


def kill_loop(
    services: dict[str, list[Service]],
    start: Callable[[str, str], Service],
    seconds: float,
    every: float,
    rng: random.Random,
    others_every: int = 4,
) -> Counter[str]:
    """SIGKILLs a service about every ``every`` seconds for ``seconds`` (the schedule does not slip by the time a
    replacement takes to start) and starts a replacement at once: a random worker, and every ``others_every``-th
    kill one of the other roles (projector, notifier) in turn. How many kills of each role."""
    kills: Counter[str] = Counter()
    others = sorted(role for role in services if role != "worker")
    started = time.monotonic()
    next_kill = started + every * rng.uniform(0.8, 1.2)
    while next_kill < started + seconds:
        time.sleep(max(0.0, next_kill - time.monotonic()))
        n = kills.total() + 1
        role = others[(n // others_every - 1) % len(others)] if others and n % others_every == 0 else "worker"
        pool = services[role]
        victim = pool.pop(rng.randrange(len(pool)))
        os.kill(victim.process.pid, signal.SIGKILL)
        victim.process.wait()
        kills[role] += 1
        pool.append(start(role, f"chaos-{role}-{n}"))
        next_kill += every * rng.uniform(0.8, 1.2)
    return kills


def with_own_work_topics(settings: Settings) -> Settings:
    """Retry and sweep-chunk topics of the test's own, beside its own event topic: the workers of no other test
    (nor one left over from an interrupted run) share their partitions or read their records."""
    own = settings.replaced(
        retries_topic=f"{settings.job_events_topic}.retries", sweep_chunks_topic=f"{settings.job_events_topic}.chunks"
    )
    specs = [spec for spec in project_topics(own) if spec.name in (own.retries_topic, own.sweep_chunks_topic)]
    asyncio.run(ensure_topics(own, specs))
    return own


def pipeline_env(settings: Settings, receiver_port: int, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """What the pipeline's services are started with: the isolated read model's database and topics."""
    return {
        "DATABASE_URL": settings.database,
        "ZIXLY_JOB_EVENTS_TOPIC": settings.job_events_topic,
        "ZIXLY_RETRIES_TOPIC": settings.retries_topic,
        "ZIXLY_SWEEP_CHUNKS_TOPIC": settings.sweep_chunks_topic,
        "ZIXLY_TOPIC_PARTITIONS": str(settings.topic_partitions),
        "ZIXLY_RECEIVER_PORT": str(receiver_port),
        "ZIXLY_WORKER_CONCURRENCY": "16",
        **(extra or {}),
    }


def service_starter(settings: Settings, env: Mapping[str, str]) -> Callable[[str, list[str]], Service]:
    """Starts a service by name and arguments, ready once its metrics answer."""

    def start(name: str, args: list[str]) -> Service:
        return start_service(settings, name, [*args, "--metrics-port", "0"], METRICS_READY, env)

    return start


def finished_ids(settings: Settings, job_ids: list[str]) -> set[str]:
    """The jobs among ``job_ids`` whose outcome the read model shows."""
    with psycopg.connect(settings.database) as connection:
        rows = connection.execute(
            "SELECT id FROM pipeline_jobs WHERE id = ANY(%s) AND status IN ('COMPLETED', 'FAILED', 'DEAD_LETTERED')",
            ([uuid.UUID(job) for job in job_ids],),
        ).fetchall()
    return {str(job_id) for (job_id,) in rows}


def count_the_log(settings: Settings, job_ids: list[str], sweep_ids: list[str], report: ChaosReport) -> None:
    found = records_in_the_log(settings)
    for key in {job_id.encode() for job_id in sweep_ids}:
        report.duplicate_sweep_plans += max(found[(key, "SweepPlanned")] - 1, 0)
        report.sweep_chunks_recorded += found[(key, "SweepResultsRecorded")]
    outcomes: Counter[bytes] = Counter()
    for (key, event_type), n in found.items():
        if event_type in JOB_ENDS:
            outcomes[key] += n
    for key in {job_id.encode() for job_id in job_ids}:
        if outcomes[key] > 1:
            report.twice.append(key.decode())
        report.lost += outcomes[key] == 0
        report.duplicate_outcomes += max(outcomes[key] - 1, 0)
        report.completed += found[(key, "JobCompleted")] > 0
        report.failed += (found[(key, "JobFailed")] + found[(key, "JobDeadLettered")]) > 0
        report.re_executions += max(found[(key, "JobStarted")] - 1, 0)


JOB_ID = re.compile(r"job ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")


def count_notifications(posts: list[tuple[str, dict[str, Any]]], job_ids: list[str], report: ChaosReport) -> None:
    """``posts``: each Slack post's Idempotency-Key and body."""
    ours = set(job_ids)
    keys_per_job: dict[str, Counter[str]] = {}
    for key, post in posts:
        found = JOB_ID.search(str(post.get("text", "")))
        if found and found.group(1) in ours:
            keys_per_job.setdefault(found.group(1), Counter())[key] += 1
    report.notifications_delivered = len(keys_per_job)
    report.duplicate_notifications = sum(len(keys) - 1 for keys in keys_per_job.values())
    report.notifications_resent = sum(n - 1 for keys in keys_per_job.values() for n in keys.values())


def planned_chunks(settings: Settings, sweep_ids: list[str]) -> int:
    """How many chunks the sweeps were planned in (each plan counted once)."""
    keys = {job_id.encode() for job_id in sweep_ids}

    async def read() -> dict[bytes, int]:
        chunks: dict[bytes, int] = {}
        async with LogReader(settings, settings.job_events_topic) as reader:
            starts, ends = await reader.beginning_offsets(), await reader.end_offsets()
            async for batch in reader.read(starts, ends):
                for record in batch:
                    if record.key in keys and header(record.headers, EVENT_TYPE_HEADER) == SweepPlanned.TYPE:
                        plan = decode(record.value)
                        assert isinstance(plan, SweepPlanned)
                        chunks[record.key] = plan.payload.chunk_count
        return chunks

    return sum(asyncio.run(read()).values())


def stories(settings: Settings, job_ids: list[str]) -> dict[str, list[str]]:
    """Each job's event types in log order: what a job that never finished went through."""
    keys = {job_id.encode() for job_id in job_ids}

    async def read() -> dict[str, list[str]]:
        told: dict[str, list[str]] = {job_id: [] for job_id in job_ids}
        async with LogReader(settings, settings.job_events_topic) as reader:
            starts, ends = await reader.beginning_offsets(), await reader.end_offsets()
            async for batch in reader.read(starts, ends):
                for record in batch:
                    if record.key in keys:
                        at = time.strftime("%H:%M:%S", time.gmtime(record.timestamp_ms / 1000))
                        told[record.key.decode()].append(
                            f"{header(record.headers, EVENT_TYPE_HEADER)} p{record.partition}@{record.offset} "
                            f"{at}.{record.timestamp_ms % 1000:03d}"
                        )
        return told

    return asyncio.run(read())
