"""``zixly bench worker`` runs end to end on the test stack: both contenders finish every job and the table names
them (its speeds are printed, never asserted)."""

from rich.console import Console

from kernel.settings import Settings
from zixly.bench.worker import run_worker_benchmark


def test_the_worker_benchmark_runs_every_job_through_both_contenders_and_prints_its_table(stack: Settings) -> None:
    console = Console(record=True, width=200)
    run_worker_benchmark(stack, console, jobs=300, rounds=1, concurrency=16, codes=[])
    printed = console.export_text()
    assert "raw aiokafka relay (baseline)" in printed
    assert "1.00x" in printed, "the baseline is its own unit"
    rows = [line for line in printed.splitlines() if line.lstrip("│ ").startswith("worker")]
    assert rows, printed
