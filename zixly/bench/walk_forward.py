"""``zixly bench walk-forward``: what a walk-forward of N folds costs against ranking the grid once on one fold.

A walk-forward ranks the whole grid on every fold's training window, then trades each fold's best cell on its test
window. Its worker-side work is exactly that: each fold's chunks (``compute.ranked_bars`` then ``run_grid``, as a
worker runs them) and the finisher's out-of-sample pass (``walk_forward``). The baseline, measured in the same
rounds, is the same grid ranked once on one training window's worth of bars. The promise is "about N times one
fold, never more": the indicators of a later fold read the bars before its window too, and an anchored fold ranks
every bar from the first, so the table also compares each walk-forward with its own training windows ranked as
plain sweeps (no bars before them).
"""

import functools
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from rich.console import Console
from rich.table import Table

from market_data.synthetic import SyntheticProvider
from processors.backtest.engine import run_grid
from processors.sweeps.compute import ranked_bars
from processors.sweeps.walk_forward import FoldChoice, walk_forward
from schemas.strategies import Signal, StrategyType
from schemas.sweeps import TradingSweepParameters, WalkForward
from zixly.bench.sweep import CONFIG, sma_pairs

BARS = 2_609  # ten years of business days
TRAIN, TEST = 1_000, 300  # five folds


@dataclass
class Scenario:
    name: str
    folds: int
    run: Callable[[], object]
    seconds: list[float] = field(default_factory=list)
    plain: "Scenario | None" = None
    """The same training windows ranked as plain sweeps, for a walk-forward."""

    def median(self) -> float:
        return statistics.median(self.seconds)


def _walk_forward(close: NDArray[np.float64], grid: dict[str, NDArray[np.float64]], plan: WalkForward) -> object:
    """Every fold's training ranking, then the out-of-sample pass over each fold's best cell."""
    parameters = TradingSweepParameters.model_validate(
        {
            "tickers": ["BENCH"],
            "strategies": [{"type": "sma_crossover", "parameters": {"fast": [2], "slow": [3]}}],
            "validation": {"walk_forward": plan.model_dump()},
        }
    )
    choices = []
    for fold in plan.folds(len(close)):
        seen, window = ranked_bars(parameters, close, fold.index)
        scores = run_grid(seen, StrategyType.SMA_CROSSOVER, grid, CONFIG, window=window).metrics["sharpe"]
        best = int(np.nanargmax(scores))
        choices.append(
            FoldChoice(fold.index, {"fast": grid["fast"][best], "slow": grid["slow"][best]}, float(scores[best]), {})
        )
    dates = np.arange(np.datetime64("2015-01-01"), np.datetime64("2015-01-01") + len(close))
    return walk_forward(close, dates, StrategyType.SMA_CROSSOVER, Signal.REGIME, plan, choices, CONFIG, "sharpe")


def _plain_sweeps(close: NDArray[np.float64], grid: dict[str, NDArray[np.float64]], plan: WalkForward) -> object:
    return [
        run_grid(close[fold.train_start : fold.train_stop], StrategyType.SMA_CROSSOVER, grid, CONFIG)
        for fold in plan.folds(len(close))
    ]


def run_walk_forward_benchmark(console: Console, rounds: int, windows: int) -> None:
    close: NDArray[np.float64] = SyntheticProvider().load("BENCH").close[:BARS]
    grid = sma_pairs(np.arange(2, 2 + windows))
    count = len(grid["fast"])
    rolling = WalkForward(train_bars=TRAIN, test_bars=TEST)
    anchored = WalkForward(train_bars=TRAIN, test_bars=TEST, anchored=True)
    folds = rolling.fold_count(len(close))
    console.print(
        f"grid: {count:,} SMA pairs; {len(close):,} bars; folds of {TRAIN:,} training and {TEST:,} test bars: "
        f"{folds} folds; one process"
    )
    one_fold = Scenario(
        f"one fold: the grid ranked on {TRAIN:,} bars (baseline)",
        1,
        lambda: run_grid(close[:TRAIN], StrategyType.SMA_CROSSOVER, grid, CONFIG),
    )
    scenarios = [one_fold]
    for kind, plan in (("rolling", rolling), ("anchored", anchored)):
        plain = Scenario(
            f"  its {folds} {kind} training windows as plain sweeps",
            folds,
            functools.partial(_plain_sweeps, close, grid, plan),
        )
        walk = Scenario(
            f"walk-forward, {folds} {kind} folds",
            folds,
            functools.partial(_walk_forward, close, grid, plan),
            plain=plain,
        )
        scenarios += [walk, plain]
    with console.status("warming up"):
        run_grid(close[:200], StrategyType.SMA_CROSSOVER, sma_pairs(np.arange(2, 12)), CONFIG)
        _walk_forward(close, sma_pairs(np.arange(2, 12)), rolling)
    for round_index in range(rounds):
        for scenario in scenarios:  # interleaved, so that the machine's noise falls on all of them alike
            with console.status(f"round {round_index + 1}/{rounds}: {scenario.name}"):
                t0 = time.perf_counter()
                scenario.run()
                scenario.seconds.append(time.perf_counter() - t0)

    baseline = one_fold.median()
    table = Table(title=f"Walk-forward cost, {count:,} SMA pairs (medians of {rounds} interleaved rounds)")
    columns = ("scenario", "folds", "median s", "backtests/s", "x one fold", "x (folds x one fold)", "x plain sweeps")
    for column in columns:
        table.add_column(column, justify="left" if column == "scenario" else "right")
    for scenario in scenarios:
        median = scenario.median()
        table.add_row(
            scenario.name,
            str(scenario.folds),
            f"{median:.3f}",
            f"{count * scenario.folds / median:,.0f}",
            f"{median / baseline:.2f}",
            f"{median / (scenario.folds * baseline):.2f}",
            f"{median / scenario.plain.median():.2f}" if scenario.plain else "",
        )
    console.print(table)
