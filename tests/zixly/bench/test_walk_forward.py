from rich.console import Console

from zixly.bench.walk_forward import run_walk_forward_benchmark


def test_the_walk_forward_benchmark_prints_each_walk_forward_beside_its_baselines() -> None:
    console = Console(record=True, width=220)
    run_walk_forward_benchmark(console, rounds=1, windows=6)
    text = console.export_text()
    assert "15 SMA pairs; 2,609 bars; folds of 1,000 training and 300 test bars: 5 folds" in text
    for row in (
        "one fold: the grid ranked on 1,000 bars (baseline)",
        "walk-forward, 5 rolling folds",
        "its 5 rolling training windows as plain sweeps",
        "walk-forward, 5 anchored folds",
        "its 5 anchored training windows as plain sweeps",
    ):
        assert row in text
