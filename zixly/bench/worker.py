"""``zixly bench worker``: short jobs through one worker, next to a raw aiokafka relay doing the same appends.

Each round appends ``jobs`` noop requests to a fresh topic, then lets the contender run them: the worker (its
queues, slots, the check for outcomes already in the log, two appends per job: started and completed), and a raw
aiokafka consumer that appends the same two records per request, pipelined, and commits. The rate is measured on
the log's own timestamps, from the first JobStarted to the last JobCompleted, so the worker's start-up is not in it.
Rounds are interleaved; the table shows medians and the ratio.

``--code DIR`` runs the worker from another checkout (the same virtualenv), to compare a change with what came
before it on the same machine in the same run.
"""

import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from kernel.kafka import delete_topic, ensure_topics, make_consumer, make_producer
from kernel.log_reader import LogReader
from kernel.settings import Settings
from kernel.topics import TopicSpec
from schemas.codec import encode, event_type_of
from schemas.events import JobCompleted, JobRequested, JobRequestedPayload, JobStarted
from zixly.stack.local import LocalStack
from zixly.stack.processes import terminate

TENANT = "bench-worker"


@dataclass
class Contender:
    name: str
    rates: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.rates) if self.rates else 0.0


async def append_requests(
    settings: Settings, topic: str, jobs: int, job_type: str = "noop", parameters: dict[str, Any] | None = None
) -> None:
    producer = make_producer(settings)
    await producer.start()
    try:
        pending = []
        for _ in range(jobs):
            job_id = uuid.uuid4()
            payload = JobRequestedPayload(job_type=job_type, parameters=parameters or {})
            request = JobRequested(
                tenant_id=TENANT, job_id=job_id, correlation_id=str(job_id), producer="bench", payload=payload
            )
            key, value, headers = encode(request)
            pending.append(await producer.send(topic, value=value, key=key, headers=headers))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def measure(settings: Settings, topic: str, jobs: int, timeout: float, waiting: list[int] | None = None) -> float:
    """Jobs per second between the first JobStarted and the last JobCompleted, once ``jobs`` have completed.

    ``waiting``, when given, receives the jobs not yet completed every half second: the backlog over time."""
    deadline = time.monotonic() + timeout
    first_started: int | None = None
    last_completed = 0
    completed = 0
    async with LogReader(settings, topic) as reader:
        positions = await reader.beginning_offsets()
        while completed < jobs:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{completed:,} of {jobs:,} jobs completed in {timeout:.0f} s")
            ends = await reader.end_offsets()
            async for batch in reader.read(positions, ends):
                for record in batch:
                    event_type = event_type_of(record.headers)
                    if event_type == JobStarted.TYPE and first_started is None:
                        first_started = record.timestamp_ms
                    elif event_type == JobCompleted.TYPE:
                        completed += 1
                        last_completed = max(last_completed, record.timestamp_ms)
            positions = ends
            if waiting is not None:
                waiting.append(jobs - completed)
            await asyncio.sleep(0.5)
    assert first_started is not None
    return jobs / max((last_completed - first_started) / 1000, 1e-3)


async def _relay(settings: Settings, topic: str, jobs: int) -> None:
    """The baseline: what any worker must do per request, with plain aiokafka: read it, append a started and a
    completed record (same sizes of envelope), and commit."""
    consumer = make_consumer(
        settings, group_id=f"bench-relay-{uuid.uuid4().hex[:8]}", enable_auto_commit=True, auto_offset_reset="earliest"
    )
    producer = make_producer(settings)
    await consumer.start()
    await producer.start()
    consumer.subscribe([topic])
    done = 0
    try:
        while done < jobs:
            batches = await consumer.getmany(timeout_ms=500, max_records=2000)
            sends = []
            for records in batches.values():
                for record in records:
                    if event_type_of(record.headers) != JobRequested.TYPE:
                        continue
                    request = JobRequested.model_validate_json(record.value)
                    for event in _lifecycle(request):
                        key, value, headers = encode(event)
                        sends.append(await producer.send(topic, value=value, key=key, headers=headers))
                    done += 1
            await asyncio.gather(*sends)
    finally:
        await producer.stop()
        await consumer.stop()


def _lifecycle(request: JobRequested) -> tuple[JobStarted, JobCompleted]:
    from schemas.events import JobCompletedPayload, JobStartedPayload, follow_up

    started = follow_up(
        request,
        JobStarted,
        producer="bench",
        payload=JobStartedPayload(attempt=1, host="bench", process_id=os.getpid()),
    )
    completed = follow_up(
        started, JobCompleted, producer="bench", payload=JobCompletedPayload(attempt=1, result={}, duration_ms=0.0)
    )
    return started, completed


def _run_worker(settings: Settings, topic: str, *, jobs: int, code: Path, log: Path, concurrency: int) -> float:
    env = os.environ | {
        "ZIXLY_JOB_EVENTS_TOPIC": topic,
        "ZIXLY_LOG_LEVEL": "WARNING",
        "ZIXLY_WORKER_CONCURRENCY": str(concurrency),
        "PYTHONPATH": str(code),
    }
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "zixly", "worker", "--metrics-port", "0"],
            cwd=code,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        return asyncio.run(measure(settings, topic, jobs, timeout=300))
    finally:
        terminate(process.pid, timeout=20)


def _run_relay(settings: Settings, topic: str, jobs: int) -> float:
    async def both() -> float:
        relay = asyncio.ensure_future(_relay(settings, topic, jobs))
        try:
            return await measure(settings, topic, jobs, timeout=300)
        finally:
            await relay

    return asyncio.run(both())


def run_worker_benchmark(
    settings: Settings, console: Console, jobs: int, rounds: int, concurrency: int, codes: list[Path]
) -> None:
    with console.status("starting the stack"):
        LocalStack(settings).up()
    here = Path(__file__).resolve().parents[2]
    checkouts = [here, *(code for code in codes if code != here)]
    contenders: list[tuple[Contender, Callable[[str], float]]] = [
        (Contender("raw aiokafka relay (baseline)"), lambda topic: _run_relay(settings, topic, jobs))
    ]
    for code in checkouts:
        name = "worker" if code == here else f"worker at {code}"
        log = settings.home / "logs" / "bench" / f"worker-{len(contenders)}.log"
        contenders.append(
            (Contender(name), partial(_run_worker, settings, jobs=jobs, code=code, log=log, concurrency=concurrency))
        )
    for round_ in range(1, rounds + 1):
        for contender, run in contenders:
            topic = f"bench.worker.{uuid.uuid4().hex[:8]}"
            asyncio.run(ensure_topics(settings, [TopicSpec(topic, settings.topic_partitions)]))
            try:
                with console.status(f"round {round_}/{rounds}: {contender.name}, {jobs:,} jobs"):
                    asyncio.run(append_requests(settings, topic, jobs))
                    contender.rates.append(run(topic))
                console.print(f"round {round_}/{rounds}: {contender.name}: {contender.rates[-1]:,.0f} jobs/s")
            finally:
                asyncio.run(delete_topic(settings, topic))
    baseline = contenders[0][0].median
    table = Table(
        title=f"{jobs:,} noop jobs, {settings.topic_partitions} partitions, worker concurrency "
        f"{concurrency}: medians of {rounds} rounds"
    )
    for column in ("contender", "jobs/s", "vs baseline", "rounds (jobs/s)"):
        table.add_column(column, justify="left" if column == "contender" else "right")
    for contender, _ in contenders:
        table.add_row(
            contender.name,
            f"{contender.median:,.0f}",
            f"{contender.median / baseline:.2f}x",
            ", ".join(f"{rate:,.0f}" for rate in contender.rates),
        )
    console.print(table)
