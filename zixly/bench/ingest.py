"""``zixly bench ingest``: webhook ingest next to a bare FastAPI endpoint and a raw aiokafka producer.

Each scenario runs ``rounds`` times, interleaved, on the same machine in the same run; the table shows medians
and ratios, because absolute figures on a shared machine drift.
"""

import asyncio
import os
import statistics
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import TopicPartition
from rich.console import Console
from rich.table import Table

from kernel.kafka import delete_topic, ensure_topics, make_consumer
from kernel.settings import Settings
from kernel.topics import TopicSpec
from zixly.bench.load import LoadResult, hey_fixed_rate, wrk
from zixly.bench.raw_producer import produce_for
from zixly.stack.local import LocalStack
from zixly.stack.processes import spawn, terminate

# The benchmark measures what a receiver can take, so its one tenant is not held to a tenant's rate or quota (the
# limiter's own cost, a dictionary lookup and a count a second, is still paid).
_UNLIMITED = {"ZIXLY_TENANT_RATE_PER_SECOND": "1e9", "ZIXLY_TENANT_RATE_BURST": "1000000000",
              "ZIXLY_TENANT_MAX_IN_FLIGHT": "1000000000"}  # fmt: skip


@dataclass
class Samples:
    results: list[LoadResult] = field(default_factory=list)

    def median(self, attribute: str) -> float:
        return float(statistics.median(float(getattr(r, attribute)) for r in self.results))


def _wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except Exception:  # not up yet
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def _start_server(command: list[str], ready_url: str, log: Path, env: dict[str, str]) -> int:
    process = spawn(command, log, env=os.environ | env)
    _wait_http(ready_url)
    return process.pid


async def _topic_size(settings: Settings, topic: str, partitions: int) -> int:
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
        return int(sum(ends.values()))
    finally:
        await consumer.stop()


def run_ingest_benchmark(settings: Settings, console: Console, seconds: int, rounds: int, workers: int) -> None:
    with console.status("starting the stack"):
        LocalStack(settings).up()
    topic = f"bench.ingest.{uuid.uuid4().hex[:8]}"
    asyncio.run(ensure_topics(settings, [TopicSpec(topic, settings.topic_partitions)]))
    logs = settings.home / "logs" / "bench"
    bare_port, receiver_port = 18001, 18002
    python = sys.executable
    servers = []
    try:
        with console.status("starting the servers"):
            servers.append(
                _start_server(
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
            )
            servers.append(_start_server(
                [python, "-m", "zixly", "receiver", "--workers", str(workers)],
                f"http://127.0.0.1:{receiver_port}/health", logs / "receiver.log",
                {"ZIXLY_RECEIVER_PORT": str(receiver_port), "ZIXLY_JOB_EVENTS_TOPIC": topic,
                 "ZIXLY_LOG_LEVEL": "WARNING", **_UNLIMITED},
            ))  # fmt: skip
        bare, receiver, fixed = Samples(), Samples(), Samples()
        raw_kafka: list[float] = []
        raw_sent = 0
        for round_ in range(1, rounds + 1):
            console.print(f"round {round_}/{rounds}")
            bare.results.append(wrk(f"http://127.0.0.1:{bare_port}/webhook/generic-job", seconds))
            receiver.results.append(wrk(f"http://127.0.0.1:{receiver_port}/webhook/generic-job", seconds))
            sent, rate = asyncio.run(produce_for(settings, topic, seconds))
            raw_sent += sent
            raw_kafka.append(rate)
            fixed.results.append(hey_fixed_rate(f"http://127.0.0.1:{receiver_port}/webhook/generic-job", seconds, 1000))
    finally:
        for pid in servers:
            terminate(pid, timeout=20)
    _report(console, bare, receiver, fixed, raw_kafka, workers, seconds, rounds)
    accepted = sum(r.ok for r in receiver.results) + sum(r.ok for r in fixed.results)
    in_log = asyncio.run(_topic_size(settings, topic, settings.topic_partitions))
    # Every 202 must be in the log: the topic holds exactly the accepted webhooks plus the raw producer's records.
    console.print(
        f"webhooks accepted (202): {accepted:,}; raw producer records: {raw_sent:,}; records in the topic: {in_log:,}; "
        f"accepted but missing from the log: {max(accepted + raw_sent - in_log, 0)}"
    )
    asyncio.run(delete_topic(settings, topic))


def _report(
    console: Console, bare: Samples, receiver: Samples, fixed: Samples, raw: list[float], workers: int,
    seconds: int, rounds: int,
) -> None:  # fmt: skip
    base = bare.median("ok_per_second")
    table = Table(title=f"Webhook ingest — medians of {rounds} rounds of {seconds}s, {workers} uvicorn workers, "
                        f"{os.cpu_count()} cores")  # fmt: skip
    table.add_column("scenario")
    table.add_column("accepted/s", justify="right")
    table.add_column("ratio to bare", justify="right")
    table.add_column("p50 ms", justify="right")
    table.add_column("p99 ms", justify="right")
    table.add_column("non-2xx", justify="right")
    rows = [
        ("bare FastAPI endpoint (wrk, 64 conns)", bare),
        ("receiver: validate + acks=all (wrk, 64 conns)", receiver),
        ("receiver at a fixed 1,000 req/s (hey)", fixed),
    ]
    for name, samples in rows:
        table.add_row(
            name, f"{samples.median('ok_per_second'):,.0f}", f"{samples.median('ok_per_second') / base:.2f}",
            f"{samples.median('p50_ms'):.1f}", f"{samples.median('p99_ms'):.1f}",
            str(sum(r.failed for r in samples.results)),
        )  # fmt: skip
    table.add_row(
        "raw aiokafka producer, acks=all (64 in flight)", f"{statistics.median(raw):,.0f}",
        f"{statistics.median(raw) / base:.2f}", "", "", "",
    )  # fmt: skip
    console.print(table)
    ratio = receiver.median("ok_per_second") / base
    console.print(
        f"receiver / bare = {ratio:.2f} (target ≥ 0.5); p99 at 1,000/s = {fixed.median('p99_ms'):.1f} ms (target < 25)"
    )
