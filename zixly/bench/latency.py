"""``zixly bench latency``: from a webhook's 202 to its job's row, at fixed request rates.

For each rate the benchmark posts ``noop`` jobs for a few seconds on an open-loop schedule (request i leaves at
i / rate, however slowly the answers before it came), and listens to the projector's change notifications
(``LISTEN zixly_job_changes``, which Postgres delivers at commit): a job is *projected* when the first notification
naming it arrives (its row is visible to any read from then on), *completed* when a notification finds its row
COMPLETED. Both are measured from the 202. The receiver, one worker and the projector run on a topic and a database
of the benchmark's own.

The baseline, in the same run and at the same rate: the log's own round trip, an aiokafka producer (acks=all) to
a consumer reading the topic's end, which no pipeline on this log can beat.
"""

import asyncio
import time
from contextlib import ExitStack
from dataclasses import dataclass, field

import aiohttp
import psycopg
from aiokafka import TopicPartition
from rich.console import Console
from rich.table import Table

from kernel.kafka import make_consumer, make_producer
from kernel.settings import Settings
from projections.postgres_store import JOB_CHANGES_CHANNEL
from zixly.bench.load import BODY
from zixly.bench.stats import percentile
from zixly.bench.system import system_under_test

TENANT = "bench-latency"
DRAIN_SECONDS = 30.0


@dataclass
class Run:
    rate: int
    sent: int = 0
    refused: int = 0  # not answered 202 (another status, an error, or no answer in time)
    started: float = 0.0
    finished_sending: float = 0.0
    answered: dict[str, float] = field(default_factory=dict)  # job id -> moment of its 202
    answer_ms: list[float] = field(default_factory=list)
    projected: dict[str, float] = field(default_factory=dict)
    completed: dict[str, float] = field(default_factory=dict)

    def after_202(self, moments: dict[str, float]) -> list[float]:
        # A notification can reach the listener before the 202 reaches the client: that job was visible at once.
        return [max(moments[job] - at, 0.0) * 1000 for job, at in self.answered.items() if job in moments]


async def follow_changes(settings: Settings, run: Run, stop: asyncio.Event) -> None:
    async with (
        await psycopg.AsyncConnection.connect(settings.database, autocommit=True) as listener,
        await psycopg.AsyncConnection.connect(settings.database, autocommit=True) as reader,
    ):
        await listener.execute(f"LISTEN {JOB_CHANGES_CHANNEL}")
        while not stop.is_set():
            # A generator that ends after half a second, so that the loop sees ``stop`` (cancelling one closes it).
            async for notice in listener.notifies(timeout=0.5):
                moment = time.perf_counter()
                ids = [job for job in notice.payload.split(",") if job not in run.completed]
                for job in ids:
                    run.projected.setdefault(job, moment)
                rows = await reader.execute(
                    "SELECT id::text FROM pipeline_jobs WHERE id = ANY(%s::uuid[]) AND status = 'COMPLETED'", (ids,)
                )
                for (job,) in await rows.fetchall():
                    run.completed.setdefault(job, moment)


async def post_at_rate(url: str, run: Run, seconds: float) -> None:
    headers = {"Content-Type": "application/json", "X-Tenant-ID": TENANT}
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def post() -> None:
            sent = time.perf_counter()
            try:
                async with session.post(url, data=BODY, headers=headers) as response:
                    body = await response.json() if response.status == 202 else None
                    answered = time.perf_counter()
            except (aiohttp.ClientError, TimeoutError):
                run.refused += 1
                return
            if body is None:
                run.refused += 1
                return
            run.answered[str(body["job_id"])] = answered
            run.answer_ms.append((answered - sent) * 1000)

        tasks = []
        run.started = time.perf_counter()
        total = int(run.rate * seconds)
        for index in range(total):
            delay = run.started + index / run.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post()))
            run.sent += 1
        run.finished_sending = time.perf_counter()
        await asyncio.gather(*tasks)


async def measure_rate(settings: Settings, url: str, rate: int, seconds: float) -> Run:
    run = Run(rate)
    stop = asyncio.Event()
    listening = asyncio.create_task(follow_changes(settings, run, stop))
    await asyncio.sleep(0.2)  # LISTEN is in place before the first request
    try:
        await post_at_rate(url, run, seconds)
        deadline = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < deadline and not set(run.answered) <= set(run.completed):
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await listening
    return run


async def _log_round_trip(settings: Settings, topic: str, rate: int, seconds: float) -> list[float]:
    """Milliseconds from send to a consumer's receipt, for records produced at ``rate`` with acks=all."""
    consumer = make_consumer(settings, group_id=None)
    producer = make_producer(settings)
    await consumer.start()
    await producer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(settings.topic_partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        sent_at: dict[bytes, float] = {}
        delays: list[float] = []
        total = int(rate * seconds)

        async def receive() -> None:
            deadline = time.monotonic() + seconds + DRAIN_SECONDS
            while len(delays) < total and time.monotonic() < deadline:
                for records in (await consumer.getmany(timeout_ms=100)).values():
                    now = time.perf_counter()
                    delays.extend((now - sent_at[r.key]) * 1000 for r in records if r.key in sent_at)

        receiving = asyncio.create_task(receive())
        await asyncio.sleep(0.2)
        started = time.perf_counter()
        sends = []
        for index in range(total):
            delay = started + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            key = f"rt-{index}".encode()
            sent_at[key] = time.perf_counter()
            sends.append(await producer.send(topic, value=BODY.encode(), key=key))
        await asyncio.gather(*sends)
        await receiving
        return delays
    finally:
        await producer.stop()
        await consumer.stop()


def run_latency_benchmark(settings: Settings, console: Console, rates: list[int], seconds: float) -> list[Run]:
    """Prints the table; returns what each rate measured."""
    runs: list[tuple[Run, list[float]]] = []
    with ExitStack() as stack:
        with console.status("starting the stack, the receiver, a worker and the projector"):
            system = stack.enter_context(system_under_test(settings, settings.home / "logs" / "bench"))
        with console.status("warming up"):
            asyncio.run(measure_rate(system.settings, system.url, 50, 2))
        for rate in rates:
            with console.status(f"{rate:,} requests/s for {seconds:g} s"):
                run = asyncio.run(measure_rate(system.settings, system.url, rate, seconds))
                floor = asyncio.run(_log_round_trip(system.settings, system.scratch_topic, rate, seconds))
            runs.append((run, floor))
            console.print(f"{rate:,}/s: {len(run.answered):,} accepted, {len(run.completed):,} completed")
    _report(console, settings, runs, seconds)
    return [run for run, _ in runs]


def _report(console: Console, settings: Settings, runs: list[tuple[Run, list[float]]], seconds: float) -> None:
    table = Table(title=f"Webhook → read model latency, noop jobs, {seconds:g} s per rate, one worker (ms)")
    for column in (
        "rate/s",
        "sent rate",
        "accepted",
        "refused",
        "202 p50/p99",
        "projected p50/p95/p99",
        "completed p50/p95/p99",
        "not completed",
        "log round trip p50/p99",
    ):
        table.add_column(column, justify="right")
    for run, floor in runs:
        projected, completed = run.after_202(run.projected), run.after_202(run.completed)
        sending = run.finished_sending - run.started
        table.add_row(
            f"{run.rate:,}",
            f"{run.sent / sending:,.0f}" if sending > 0 else "",
            f"{len(run.answered):,}",
            f"{run.refused:,}",
            _ms(run.answer_ms, 0.5, 0.99),
            _ms(projected, 0.5, 0.95, 0.99),
            _ms(completed, 0.5, 0.95, 0.99),
            f"{len(run.answered) - len(completed):,}",
            _ms(floor, 0.5, 0.99),
        )
    console.print(table)
    console.print(
        f"projector: batches of up to {settings.projector_batch_size:,} records, as many as one fetch returns (no "
        "timer: a small batch when idle, a large one under load); targets at 500/s: projected p50 ≤ 50, p99 ≤ 250"
    )


def _ms(values: list[float], *quantiles: float) -> str:
    if not values:
        return "—"
    return " / ".join(f"{percentile(values, q):.1f}" for q in quantiles)
