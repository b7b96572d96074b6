"""``zixly bench scale``: throughput with 1, 2 and 4 worker processes in one consumer group, for short jobs
(``noop``, a 0.05 s sleep) and for one large trading sweep (its chunks spread over the workers).

Each round appends the jobs to a fresh topic first, then starts N workers on it and measures on the log's own
timestamps (first JobStarted to last JobCompleted), sampling the backlog (jobs not yet completed) every half
second. The workers share the topic's partitions, which cap them: past that many, a worker has nothing to read.
Rounds are interleaved; the table shows medians, the speed-up over one worker and the backlog's course.
"""

import asyncio
import os
import statistics
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from kernel.kafka import delete_topic, ensure_topics
from kernel.settings import Settings
from kernel.topics import TopicSpec
from schemas.sweeps import SWEEP_JOB_TYPE, TradingSweepWebhook
from zixly.bench.worker import append_requests, measure
from zixly.stack.local import LocalStack
from zixly.stack.processes import terminate


@dataclass(frozen=True)
class Kind:
    job_type: str
    parameters: dict[str, Any]
    jobs: int | None = None  # None: --jobs
    unit: str = "jobs/s"
    per_job: int = 1  # units of work in one job: a sweep's backtests


SWEEP = TradingSweepWebhook.model_validate(
    {
        "tickers": ["AAPL", "MSFT", "GOOG", "AMZN"],
        "strategies": [
            {
                "type": "sma_crossover",
                "parameters": {
                    "fast": {"start": 2, "stop": 60, "step": 1},
                    "slow": {"start": 20, "stop": 200, "step": 2},
                },
            }
        ],
        "data_source": "bundled",
    }
)
KINDS: dict[str, Kind] = {
    "noop": Kind("noop", {}),
    "sleep 0.05 s": Kind("sleep", {"seconds": 0.05, "progress_steps": 0}),
    "sweep": Kind(
        SWEEP_JOB_TYPE,
        SWEEP.job_parameters(),
        jobs=1,
        unit="backtests/s",
        per_job=SWEEP.combination_count() * len(SWEEP.tickers),
    ),
}


@dataclass
class Cell:
    rates: list[float] = field(default_factory=list)
    backlogs: list[list[int]] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.rates) if self.rates else 0.0

    def course(self, points: int = 6) -> str:
        """The backlog of the median round at ``points`` moments from start to end."""
        if not self.backlogs:
            return ""
        samples = sorted(self.backlogs, key=len)[len(self.backlogs) // 2]
        picked = [samples[round(i * (len(samples) - 1) / (points - 1))] for i in range(points)] if samples else []
        return " → ".join(f"{n:,}" for n in picked)


def _run(
    settings: Settings, topic: str, jobs: int, workers: int, concurrency: int, log: Path
) -> tuple[float, list[int]]:
    env = os.environ | {
        "ZIXLY_JOB_EVENTS_TOPIC": topic,
        "ZIXLY_LOG_LEVEL": "WARNING",
        "ZIXLY_WORKER_CONCURRENCY": str(concurrency),
    }
    log.parent.mkdir(parents=True, exist_ok=True)
    processes = []
    with open(log, "ab") as out:
        for _ in range(workers):
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "zixly", "worker", "--metrics-port", "0"],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
            )
    waiting: list[int] = []
    try:
        rate = asyncio.run(measure(settings, topic, jobs, timeout=600, waiting=waiting))
        return rate, waiting
    finally:
        for process in processes:
            terminate(process.pid, timeout=20)


def run_scale_benchmark(
    settings: Settings,
    console: Console,
    jobs: int,
    rounds: int,
    workers: list[int],
    concurrency: int,
    kinds: list[str] | None = None,
) -> None:
    with console.status("starting the stack"):
        LocalStack(settings).up()
    chosen = kinds or list(KINDS)
    cells = {(kind, n): Cell() for kind in chosen for n in workers}
    log = settings.home / "logs" / "bench" / "scale-workers.log"
    for round_ in range(1, rounds + 1):
        for (kind, n), cell in cells.items():
            spec = KINDS[kind]
            count = spec.jobs or jobs
            topic = f"bench.scale.{uuid.uuid4().hex[:8]}"
            asyncio.run(ensure_topics(settings, [TopicSpec(topic, settings.topic_partitions)]))
            try:
                with console.status(f"round {round_}/{rounds}: {kind}, {n} worker(s), {count:,} jobs"):
                    asyncio.run(append_requests(settings, topic, count, spec.job_type, spec.parameters))
                    rate, waiting = _run(settings, topic, count, n, concurrency, log)
                cell.rates.append(rate * spec.per_job)
                cell.backlogs.append(waiting)
                console.print(f"round {round_}/{rounds}: {kind}, {n} worker(s): {rate * spec.per_job:,.0f} {spec.unit}")
            finally:
                asyncio.run(delete_topic(settings, topic))
    title = (
        f"{jobs:,} jobs a round, {settings.topic_partitions} partitions (the cap on useful workers), "
        f"{concurrency} slots a worker, {os.cpu_count()} cores: medians of {rounds} rounds"
    )
    table = Table(title=title)
    for column in ("jobs", "workers", "rate", "vs 1 worker", "backlog over the run (jobs waiting)", "rounds"):
        table.add_column(
            column, justify="left" if column in ("jobs", "backlog over the run (jobs waiting)") else "right"
        )
    for kind in chosen:
        one = cells.get((kind, min(workers)), Cell()).median or 1.0
        for n in workers:
            cell = cells[(kind, n)]
            table.add_row(
                kind,
                str(n),
                f"{cell.median:,.0f} {KINDS[kind].unit}",
                f"{cell.median / one:.2f}x",
                cell.course(),
                ", ".join(f"{rate:,.0f}" for rate in cell.rates),
            )
    console.print(table)
