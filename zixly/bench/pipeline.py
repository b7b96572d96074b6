"""``zixly bench pipeline``: the job rate the whole running system sustains.

``noop`` webhooks go in at rising fixed rates (open loop, as in ``bench latency``) through the receiver, the
workers, the projector and the notifier, each a process of its own on a topic and a database of the benchmark's
own. A rate is *sustained* when every job accepted at it is COMPLETED in the read model within
``DRAIN_SECONDS`` of the last request: the backlog did not grow. Each step prints completed jobs/s, how long the
backlog took to drain, and each process's CPU in cores; the benchmark stops after the first step that falls
behind. The baseline, in the same run: how many appends/s the log itself takes from a raw aiokafka producer (a job
is three appends: requested, started, completed).
"""

import asyncio
import os
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass

import psutil
from rich.console import Console
from rich.table import Table

from kernel.settings import Settings
from zixly.bench.cpu import CpuMeter, CpuShares, command_contains, named, tree_of
from zixly.bench.latency import Run, measure_rate
from zixly.bench.raw_producer import produce_for
from zixly.bench.system import system_under_test

DRAIN_SECONDS = 2.0
APPENDS_PER_JOB = 3
GROUPS = ("receiver", "workers", "projector", "notifier", "broker", "Postgres", "benchmark")


@dataclass(frozen=True)
class Step:
    run: Run
    cpu: CpuShares

    @property
    def drained_in(self) -> float | None:
        """Seconds from the last request to the last completion; None when some accepted job never completed."""
        if not self.run.answered or not set(self.run.answered) <= set(self.run.completed):
            return None
        return max(self.run.completed[job] for job in self.run.answered) - self.run.finished_sending

    @property
    def sustained(self) -> bool:
        return self.drained_in is not None and self.drained_in <= DRAIN_SECONDS

    @property
    def completed_per_second(self) -> float:
        done = [self.run.completed[job] for job in self.run.answered if job in self.run.completed]
        return len(done) / (max(done) - self.run.started) if done else 0.0


def _any_of(*matchers: Callable[[psutil.Process], bool]) -> Callable[[psutil.Process], bool]:
    return lambda process: any(match(process) for match in matchers)


def run_pipeline_benchmark(
    settings: Settings, console: Console, rates: list[int], seconds: float, workers: int
) -> list[Step]:
    """Prints the table; returns each step measured."""
    steps: list[Step] = []
    with ExitStack() as stack:
        with console.status(f"starting the stack, the receiver, {workers} worker(s), the projector, the notifier"):
            system = stack.enter_context(
                system_under_test(settings, settings.home / "logs" / "bench", workers=workers, notifier=True)
            )
        pids = system.pids
        meter = CpuMeter(
            {
                "receiver": tree_of(pids["receiver"]),
                "workers": _any_of(*(tree_of(pid) for name, pid in pids.items() if name.startswith("worker"))),
                "projector": tree_of(pids["projector"]),
                "notifier": tree_of(pids["notifier"]),
                "broker": command_contains("kafka.Kafka"),
                "Postgres": named("postgres"),
                "benchmark": lambda process: process.pid == os.getpid(),
            }
        )
        with console.status("warming up"):
            asyncio.run(measure_rate(system.settings, system.url, 50, 2))
        with console.status("the log's own append rate (raw aiokafka, 64 in flight)"):
            _, raw_appends = asyncio.run(produce_for(system.settings, system.scratch_topic, 5))
        for rate in rates:
            with console.status(f"{rate:,} jobs/s for {seconds:g} s"), meter.measure() as cpu:
                run = asyncio.run(measure_rate(system.settings, system.url, rate, seconds))
            step = Step(run, cpu)
            steps.append(step)
            drained = f"{step.drained_in:.1f} s" if step.drained_in is not None else "never"
            console.print(f"{rate:,}/s: {step.completed_per_second:,.0f} completed/s, backlog drained in {drained}")
            if not step.sustained:
                break
    _report(console, steps, raw_appends, workers, seconds)
    return steps


def _report(console: Console, steps: list[Step], raw_appends: float, workers: int, seconds: float) -> None:
    table = Table(
        title=f"noop jobs through the running system, {workers} worker(s), {seconds:g} s a step, "
        f"{os.cpu_count()} cores; CPU in cores busy"
    )
    for column in ("offered/s", "accepted", "completed/s", "drained in", "sustained", *GROUPS):
        table.add_column(column, justify="right")
    for step in steps:
        drained = f"{step.drained_in:.1f} s" if step.drained_in is not None else "never"
        table.add_row(
            f"{step.run.rate:,}",
            f"{len(step.run.answered):,}",
            f"{step.completed_per_second:,.0f}",
            drained,
            "yes" if step.sustained else "no",
            *(f"{step.cpu.cores.get(group, 0.0):.2f}" for group in GROUPS),
        )
    console.print(table)
    best = max((step.run.rate for step in steps if step.sustained), default=0)
    console.print(
        f"sustained: {best:,} jobs/s (target ≥ 1,000 with one worker) = {best * APPENDS_PER_JOB:,} appends/s; the log "
        f"alone takes {raw_appends:,.0f} appends/s from a raw aiokafka producer (ratio "
        f"{best * APPENDS_PER_JOB / raw_appends:.2f})"
    )
