"""``zixly bench sweep``: the backtest engine next to vectorbt on the same grid, data and conventions.

The grid is every fast/slow pair of 154 SMA windows (11,781 backtests) over 2,500 bars of seeded synthetic prices,
with fees and slippage; each backtest yields total return, Sharpe and max drawdown (ours computes all ten metrics).
The engine runs in one process and, as a sweep does, split over a process pool; vectorbt runs its own pipeline
(MA.run_combs, signals, Portfolio.from_signals, the three metrics) after a JIT warm-up. The engine also runs the grid
with the crossing signal, whose positions come from a state machine rather than a comparison. The table shows
medians and ratios, and the largest difference between the two results. Next to them, the floor: a minimal
compiled loop that computes only each combination's equity path (``equity_floor``), so the table shows what the
metrics, the positions table and the engine's generality cost per bar.
"""

import os
import statistics
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from rich.console import Console
from rich.table import Table

from market_data.synthetic import SyntheticProvider
from processors.backtest.engine import BacktestConfig, GridResult, run_grid
from processors.backtest.simulation import Costs
from schemas.strategies import Signal, StrategyType
from zixly.bench.equity_floor import total_returns

WINDOWS = np.arange(2, 156)
BARS = 2_500
CONFIG = BacktestConfig(
    Costs(fee=0.001, slippage=0.0005), initial_capital=10_000.0, periods_per_year=252.0, long_short=False
)


def bench_prices() -> NDArray[np.float64]:
    close: NDArray[np.float64] = SyntheticProvider().load("BENCH").close[:BARS]
    return close


def sma_pairs(windows: NDArray[np.int64]) -> dict[str, NDArray[np.float64]]:
    fast, slow = np.triu_indices(len(windows), 1)
    return {"fast": windows[fast].astype(np.float64), "slow": windows[slow].astype(np.float64)}


def _engine_part(close: NDArray[np.float64], fast: NDArray[np.float64], slow: NDArray[np.float64]) -> GridResult:
    return run_grid(close, StrategyType.SMA_CROSSOVER, {"fast": fast, "slow": slow}, CONFIG)


def _engine_pool(
    pool: ProcessPoolExecutor, processes: int, close: NDArray[np.float64], grid: dict[str, NDArray[np.float64]]
) -> dict[str, NDArray[np.float64]]:
    parts = np.array_split(np.arange(len(grid["fast"])), processes * 2)
    futures = [pool.submit(_engine_part, close, grid["fast"][p], grid["slow"][p]) for p in parts]
    results = [f.result() for f in futures]
    return {name: np.concatenate([r.metrics[name] for r in results]) for name in results[0].metrics}


def _vectorbt(close: NDArray[np.float64], windows: NDArray[np.int64]) -> dict[str, NDArray[np.float64]]:
    import pandas as pd  # type: ignore[import-untyped]
    import vectorbt as vbt

    vbt.settings.returns["year_freq"] = f"{CONFIG.periods_per_year:g} days"
    series = pd.Series(close, index=pd.date_range("2015-01-01", periods=close.size, freq="D"))
    fast, slow = vbt.MA.run_combs(series, window=windows, r=2, short_names=["fast", "slow"])
    above = fast.ma_above(slow)
    before = above.shift(1, fill_value=False)
    portfolio = vbt.Portfolio.from_signals(
        series,
        above & ~before,
        ~above & before,
        fees=CONFIG.costs.fee,
        slippage=CONFIG.costs.slippage,
        init_cash=CONFIG.initial_capital,
        freq="1D",
        lock_cash=True,
    )
    return {
        "total_return": portfolio.total_return().to_numpy(),
        "sharpe": portfolio.sharpe_ratio().to_numpy(),
        "max_drawdown": portfolio.max_drawdown().to_numpy(),
    }


@dataclass
class Scenario:
    name: str
    run: Callable[[], Any]
    rounds: int
    seconds: list[float]

    def median(self) -> float:
        return statistics.median(self.seconds)


def run_sweep_benchmark(console: Console, rounds: int, reference_rounds: int, processes: int | None) -> None:
    try:
        import vectorbt  # noqa: F401
    except ImportError:
        console.print("[red]vectorbt is the baseline and is not installed: pip install -e '.[dev]'[/red]")
        raise SystemExit(2) from None
    warnings.simplefilter("ignore")
    close = bench_prices()
    grid = sma_pairs(WINDOWS)
    count = len(grid["fast"])
    processes = processes or os.cpu_count() or 1
    console.print(
        f"grid: {count:,} SMA pairs of {len(WINDOWS)} windows x {close.size:,} bars; "
        f"{processes} processes for the pool; {os.cpu_count()} cores"
    )

    outputs: dict[str, dict[str, NDArray[np.float64]]] = {}
    with console.status("warming up (pool processes, vectorbt's JIT)"), ProcessPoolExecutor(processes) as pool:
        _engine_pool(pool, processes, close, sma_pairs(WINDOWS[:20]))
        _vectorbt(close, WINDOWS[:6])
        small = sma_pairs(WINDOWS[:20])
        total_returns(close, WINDOWS[:20], small["fast"], small["slow"], CONFIG.costs.fee, CONFIG.costs.slippage)
        floor = Scenario(
            "floor: a numba loop, equity only, 1 process",
            lambda: {
                "total_return": total_returns(
                    close, WINDOWS, grid["fast"], grid["slow"], CONFIG.costs.fee, CONFIG.costs.slippage
                )
            },
            rounds,
            [],
        )
        scenarios = [
            Scenario(
                "zixly engine, 1 process",
                lambda: run_grid(close, StrategyType.SMA_CROSSOVER, grid, CONFIG).metrics,
                rounds,
                [],
            ),
            Scenario(
                "zixly engine, crossing signal, 1 process",
                lambda: run_grid(close, StrategyType.SMA_CROSSOVER, grid, CONFIG, signal=Signal.CROSSING).metrics,
                rounds,
                [],
            ),
            Scenario(
                f"zixly engine, pool of {processes}", lambda: _engine_pool(pool, processes, close, grid), rounds, []
            ),
            floor,
            Scenario("vectorbt 1.x (reference)", lambda: _vectorbt(close, WINDOWS), reference_rounds, []),
        ]
        for round_index in range(max(s.rounds for s in scenarios)):
            for scenario in scenarios:
                if round_index >= scenario.rounds:
                    continue
                with console.status(f"round {round_index + 1}: {scenario.name}"):
                    t0 = time.perf_counter()
                    outputs[scenario.name] = scenario.run()
                    scenario.seconds.append(time.perf_counter() - t0)

    reference = scenarios[-1]
    table = Table(title=f"Backtests per second, {count:,} SMA pairs x {close.size:,} bars (medians)")
    for column in ("scenario", "rounds", "median s", "backtests/s", "x vectorbt", "x floor"):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    for scenario in scenarios:
        table.add_row(
            scenario.name,
            str(len(scenario.seconds)),
            f"{scenario.median():.2f}",
            f"{count / scenario.median():,.0f}",
            f"{reference.median() / scenario.median():.1f}",
            f"{floor.median() / scenario.median():.2f}",
        )
    console.print(table)
    # The floor is only a floor if it computes the same thing: its total returns are the engine's.
    difference = np.nanmax(np.abs(outputs[floor.name]["total_return"] - outputs[scenarios[0].name]["total_return"]))
    console.print(f" floor check: max |engine - floor| total return = {difference:.2e} over {count:,} backtests")

    ours, theirs = outputs[scenarios[0].name], outputs[reference.name]
    for name in ("total_return", "sharpe", "max_drawdown"):
        a, b = ours[name], np.where(np.isinf(theirs[name]), np.nan, theirs[name])
        both = np.isfinite(a) & np.isfinite(b)
        undefined = int((~np.isfinite(a) & ~np.isfinite(b)).sum())
        console.print(
            f"{name:>13}: max |zixly - vectorbt| = {np.max(np.abs(a[both] - b[both])):.2e} "
            f"over {both.sum():,} backtests; undefined in both: {undefined}"
        )
