"""``zixly bench pipeline`` runs end to end on the test stack: at low rates every accepted job completes, each step
reports every process's CPU, and the table prints (its rates are printed, never asserted)."""

from rich.console import Console

from kernel.settings import Settings
from zixly.bench.pipeline import GROUPS, run_pipeline_benchmark


def test_the_pipeline_benchmark_completes_every_job_at_rising_rates_and_prints_its_table(stack: Settings) -> None:
    console = Console(record=True, width=240)

    steps = run_pipeline_benchmark(stack, console, rates=[20, 40], seconds=1.0, workers=1)

    assert [len(step.run.answered) for step in steps] == [20, 40]
    assert all(step.drained_in is not None for step in steps), "every accepted job reached COMPLETED"
    assert all(set(step.cpu.cores) >= set(GROUPS) - {"benchmark"} for step in steps)
    assert all(step.cpu.cores["workers"] > 0 for step in steps)
    printed = console.export_text()
    assert "sustained:" in printed
    assert "appends/s from a raw aiokafka producer" in printed
