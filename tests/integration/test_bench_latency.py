"""``zixly bench latency`` runs end to end on the test stack: every job it posts at a low rate is accepted, projected
and completed, and the table says so (its latencies are printed, never asserted)."""

from rich.console import Console

from kernel.settings import Settings
from zixly.bench.latency import run_latency_benchmark


def test_the_latency_benchmark_follows_every_job_to_its_completed_row_and_prints_its_table(stack: Settings) -> None:
    console = Console(record=True, width=240)

    [run] = run_latency_benchmark(stack, console, rates=[40], seconds=1.5)

    assert (run.sent, len(run.answered), run.refused) == (60, 60, 0)
    assert set(run.answered) <= set(run.projected)
    assert set(run.answered) <= set(run.completed)
    assert all(run.projected[job] <= run.completed[job] for job in run.answered)
    printed = console.export_text()
    assert "log round trip" in printed
    assert [line for line in printed.splitlines() if line.lstrip("│ ").startswith("40 ")], printed
