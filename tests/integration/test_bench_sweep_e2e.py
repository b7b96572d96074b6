"""``zixly bench sweep-e2e`` runs end to end on the test stack, at a small size: the sweep goes from the webhook to
its COMPLETED row with every backtest's row in Postgres and its artifacts in the object store, and the table says
where the time went (its times are printed, never asserted)."""

from rich.console import Console

from kernel.settings import Settings
from zixly.bench.sweep_e2e import run_sweep_e2e_benchmark


def test_the_sweep_benchmark_follows_one_sweep_from_its_webhook_to_every_row_and_artifact(stack: Settings) -> None:
    console = Console(record=True, width=200)

    run = run_sweep_e2e_benchmark(stack, console, fast=5, slow=60)

    assert run.backtests == 4 * 5 * 60
    assert run.rows == run.backtests, "every backtest has its row"
    assert run.chunks == 4  # one ticker each, 300 backtests (chunks hold up to 1,000)
    assert run.objects >= 3  # the chunks' Parquet parts and the summary at least
    assert run.stored_bytes > 0
    assert all(seconds >= 0 for seconds in run.phases.values())
    assert run.engine_per_second > 0
    assert run.cpu.cores["worker's process pool"] > 0, "the backtests ran in the worker's pool"
    printed = console.export_text()
    assert "202 → COMPLETED row" in printed
    assert "end to end / engine" in printed
    assert "ms a chunk" in printed
