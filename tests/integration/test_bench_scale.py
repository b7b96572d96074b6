"""``zixly bench scale`` runs end to end on the test stack: every worker count finishes every job of the short
kinds and the table names them (its speeds are printed, never asserted). The sweep kind's large grid is for runs by
hand; test_trading_sweep runs sweeps through workers."""

from rich.console import Console

from kernel.settings import Settings
from zixly.bench.scale import run_scale_benchmark

SHORT = ["noop", "sleep 0.05 s"]


def test_the_scale_benchmark_runs_every_kind_with_every_worker_count_and_prints_its_table(stack: Settings) -> None:
    console = Console(record=True, width=240)

    run_scale_benchmark(stack, console, jobs=200, rounds=1, workers=[1, 2], concurrency=16, kinds=SHORT)

    printed = console.export_text()
    rows = [line for line in printed.splitlines() if line.lstrip("│ ").startswith(tuple(SHORT))]
    assert len(rows) == 2 * len(SHORT), printed
    assert printed.count("1.00x") >= len(SHORT), "one worker is the unit of each kind"
    assert "partitions (the cap on useful workers)" in printed
