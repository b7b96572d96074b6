"""``zixly bench ingest``: webhook ingest next to a bare FastAPI endpoint and a raw aiokafka producer.

Each scenario runs ``rounds`` times, interleaved, on the same machine in the same run; the table shows medians
and ratios, because absolute figures on a shared machine drift.
"""

import asyncio
import os
import statistics
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka import TopicPartition
from rich.console import Console
from rich.table import Table
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks.webhooks import Webhook

from identity.tenants import TenantDirectory
from kernel.database import TenantScope, run_with_engine, scoped
from kernel.kafka import delete_topic, ensure_topics, make_consumer
from kernel.secret_box import SecretBox
from kernel.settings import Settings
from kernel.topics import TopicSpec
from schemas.operational_tables import webhook_receipts
from zixly.bench.cpu import LOAD_GENERATOR, CpuMeter, CpuShares, command_contains, named, tree_of
from zixly.bench.load import BODY, LoadResult, wrk
from zixly.bench.raw_producer import produce_for, produce_for_librdkafka
from zixly.bench.servers import UNLIMITED_TENANT, start_server
from zixly.stack.local import LocalStack
from zixly.stack.processes import terminate


@dataclass
class Samples:
    results: list[LoadResult] = field(default_factory=list)
    shares: list[CpuShares] = field(default_factory=list)

    def add(self, result: LoadResult, cpu: CpuShares) -> None:
        self.results.append(result)
        self.shares.append(cpu)

    def median(self, attribute: str) -> float:
        return float(statistics.median(float(getattr(r, attribute)) for r in self.results))

    def cpu(self, group: str) -> float:
        return float(statistics.median(share.cores.get(group, 0.0) for share in self.shares))


async def _topic_size(settings: Settings, topic: str, partitions: int) -> int:
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
        return int(sum(ends.values()))
    finally:
        await consumer.stop()


SIGNED_TENANT = "bench-signed"
# Prepared signed requests per second of a saturating round: above what the bare endpoint takes on this machine,
# so that a round never runs out (it would show as failures, not as repeated deliveries).
SIGNED_PER_SECOND = 25_000
FIXED_RATE = 1000


@dataclass(frozen=True)
class Scenario:
    name: str
    server: str
    """The CPU group of the process under test."""


BARE = Scenario("bare FastAPI endpoint (wrk, 64 conns)", "bare")
UNSIGNED = Scenario("receiver: unsigned, no key (wrk, 64 conns)", "receiver")
SIGNED = Scenario("receiver: signed + idempotent (wrk, 64 conns)", "receiver")
RAW = Scenario("raw aiokafka producer, acks=all (64 in flight)", "benchmark")
RAW_LIBRDKAFKA = Scenario("raw confluent-kafka (librdkafka) producer, same", "benchmark")
UNSIGNED_FIXED = Scenario(f"receiver: unsigned, paced at {FIXED_RATE:,}/s (wrk, 20 conns)", "receiver")
SIGNED_FIXED = Scenario(f"receiver: signed + idempotent, paced at {FIXED_RATE:,}/s", "receiver")
SCENARIOS = (BARE, UNSIGNED, SIGNED, RAW, RAW_LIBRDKAFKA, UNSIGNED_FIXED, SIGNED_FIXED)


def run_ingest_benchmark(settings: Settings, console: Console, seconds: int, rounds: int, workers: int) -> None:
    with console.status("starting the stack"):
        LocalStack(settings).up()
    topic = f"bench.ingest.{uuid.uuid4().hex[:8]}"
    asyncio.run(ensure_topics(settings, [TopicSpec(topic, settings.topic_partitions)]))
    secret = run_with_engine(settings, lambda engine: _signing_secret(settings, engine))
    logs = settings.home / "logs" / "bench"
    bare_port, receiver_port = 18001, 18002
    python = sys.executable
    servers: dict[str, int] = {}
    samples: dict[Scenario, Samples] = {scenario: Samples() for scenario in SCENARIOS}
    raw_sent = 0
    try:
        with console.status("starting the servers"):
            servers["bare"] = start_server(
                [
                    python,
                    "-m",
                    "uvicorn",
                    "zixly.bench.bare_app:create_app",
                    "--factory",
                    "--port",
                    str(bare_port),
                    "--workers",
                    str(workers),
                    "--no-access-log",
                    "--log-level",
                    "warning",
                ],
                f"http://127.0.0.1:{bare_port}/docs",
                logs / "bare.log",
                {},
            )
            servers["receiver"] = start_server(
                [python, "-m", "zixly", "receiver", "--workers", str(workers)],
                f"http://127.0.0.1:{receiver_port}/health",
                logs / "receiver.log",
                {
                    "ZIXLY_RECEIVER_PORT": str(receiver_port),
                    "ZIXLY_JOB_EVENTS_TOPIC": topic,
                    "ZIXLY_LOG_LEVEL": "WARNING",
                    **UNLIMITED_TENANT,
                },
            )
        meter = CpuMeter(
            {
                "bare": tree_of(servers["bare"]),
                "receiver": tree_of(servers["receiver"]),
                "benchmark": lambda process: process.pid == os.getpid(),
                "broker": command_contains("kafka.Kafka"),
                "Postgres": named("postgres"),
            }
        )
        bare_url = f"http://127.0.0.1:{bare_port}/webhook/generic-job"
        url = f"http://127.0.0.1:{receiver_port}/webhook/generic-job"
        prepared = logs / "signed-requests.tsv"
        for round_ in range(1, rounds + 1):
            console.print(f"round {round_}/{rounds}")
            with meter.measure() as cpu:
                result = wrk(bare_url, seconds)
            samples[BARE].add(result, cpu)
            with meter.measure() as cpu:
                result = wrk(url, seconds)
            samples[UNSIGNED].add(result, cpu)
            _prepare_signed(prepared, secret, seconds * SIGNED_PER_SECOND)
            with meter.measure() as cpu:
                result = wrk(url, seconds, prepared=prepared)
            samples[SIGNED].add(result, cpu)
            with meter.measure() as cpu:
                sent, rate = asyncio.run(produce_for(settings, topic, seconds))
            raw_sent += sent
            samples[RAW].add(LoadResult(rate, 0.0, 0.0, sent, 0), cpu)
            with meter.measure() as cpu:
                sent, rate = asyncio.run(produce_for_librdkafka(settings, topic, seconds))
            raw_sent += sent
            samples[RAW_LIBRDKAFKA].add(LoadResult(rate, 0.0, 0.0, sent, 0), cpu)
            with meter.measure() as cpu:
                result = wrk(url, seconds, connections=20, rate=FIXED_RATE)
            samples[UNSIGNED_FIXED].add(result, cpu)
            _prepare_signed(prepared, secret, seconds * FIXED_RATE * 2)
            with meter.measure() as cpu:
                result = wrk(url, seconds, connections=20, prepared=prepared, rate=FIXED_RATE)
            samples[SIGNED_FIXED].add(result, cpu)
        prepared.unlink(missing_ok=True)
    finally:
        for pid in servers.values():
            terminate(pid, timeout=20)
    _report(console, samples, workers, seconds, rounds)
    accepted = sum(r.ok for scenario, s in samples.items() if scenario.server == "receiver" for r in s.results)
    in_log = asyncio.run(_topic_size(settings, topic, settings.topic_partitions))
    # Every 202 must be in the log: the topic holds exactly the accepted webhooks plus the raw producer's records.
    console.print(
        f"webhooks accepted (202): {accepted:,}; raw producer records: {raw_sent:,}; records in the topic: {in_log:,}; "
        f"accepted but missing from the log: {max(accepted + raw_sent - in_log, 0)}"
    )
    asyncio.run(delete_topic(settings, topic))
    run_with_engine(settings, _forget_receipts)


async def _signing_secret(settings: Settings, engine: AsyncEngine) -> str:
    """The benchmark tenant's signing secret: registered on the first run, a fresh one (the old ones expiring at
    once) on the next."""
    directory = TenantDirectory(engine, SecretBox.from_text(settings.master_keys.get_secret_value()))
    if await directory.exists(SIGNED_TENANT):
        return await directory.rotate(SIGNED_TENANT, overlap=timedelta(0))
    return await directory.create(SIGNED_TENANT, "ingest benchmark")


async def _forget_receipts(engine: AsyncEngine) -> None:
    """The benchmark's idempotency receipts are of no use to anyone once it ends."""
    async with scoped(engine, TenantScope.of(SIGNED_TENANT)) as connection:
        await connection.execute(delete(webhook_receipts).where(webhook_receipts.c.tenant_id == SIGNED_TENANT))


def _prepare_signed(path: Path, secret: str, count: int) -> None:
    """``count`` deliveries of the benchmark's body, each with its own webhook-id, signed as an integrator signs."""
    hook = Webhook(secret)
    now = datetime.now(UTC)
    stamp = str(int(now.timestamp()))
    with path.open("w") as out:
        for _ in range(count):
            webhook_id = f"msg_{uuid.uuid4().hex}"
            out.write(f"{SIGNED_TENANT}\t{webhook_id}\t{stamp}\t{hook.sign(webhook_id, now, BODY)}\n")


def _report(console: Console, samples: dict[Scenario, Samples], workers: int, seconds: int, rounds: int) -> None:
    base = samples[BARE].median("ok_per_second")
    table = Table(
        title=f"Webhook ingest — medians of {rounds} rounds of {seconds}s, {workers} uvicorn workers, "
        f"{os.cpu_count()} cores; CPU in cores busy"
    )
    for column in ("scenario", "accepted/s", "ratio to bare", "p50 ms", "p99 ms", "non-2xx"):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    for column in ("CPU: server", "broker", "Postgres", "wrk"):
        table.add_column(column, justify="right")
    for scenario, sample in samples.items():
        latency = scenario not in (RAW, RAW_LIBRDKAFKA)
        table.add_row(
            scenario.name,
            f"{sample.median('ok_per_second'):,.0f}",
            f"{sample.median('ok_per_second') / base:.2f}",
            f"{sample.median('p50_ms'):.1f}" if latency else "",
            f"{sample.median('p99_ms'):.1f}" if latency else "",
            str(sum(r.failed for r in sample.results)) if latency else "",
            *(f"{sample.cpu(group):.2f}" for group in (scenario.server, "broker", "Postgres", LOAD_GENERATOR)),
        )
    console.print(table)
    signed = samples[SIGNED].median("ok_per_second") / base
    unsigned = samples[UNSIGNED].median("ok_per_second") / base
    console.print(
        f"signed + idempotent / bare = {signed:.2f} (target ≥ 0.5; unsigned {unsigned:.2f}); "
        f"p99 at {FIXED_RATE:,}/s signed = {samples[SIGNED_FIXED].median('p99_ms'):.1f} ms, "
        f"unsigned = {samples[UNSIGNED_FIXED].median('p99_ms'):.1f} ms (target < 25)"
    )
