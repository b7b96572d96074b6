"""Backtesting a whole grid: positions, simulation and metrics block by block, so memory stays bounded."""

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from processors.backtest.metrics import METRIC_NAMES, compute
from processors.backtest.simulation import Costs, simulate
from processors.backtest.strategies import STRATEGY_CLASSES, Grid
from schemas.strategies import StrategyType

# 1 M cells (8 MB per float array) per block: big enough to amortise numpy call overhead, small enough that the
# dozen temporaries of a block stay near the CPU cache instead of streaming hundreds of MB per pass.
BLOCK_CELLS = 1_000_000


@dataclass(frozen=True)
class BacktestConfig:
    costs: Costs
    initial_capital: float
    periods_per_year: float
    long_short: bool


@dataclass(frozen=True)
class GridResult:
    metrics: dict[str, NDArray[np.float64]]
    """Metric name → one value per combination, in grid order."""

    @property
    def size(self) -> int:
        return len(self.metrics["total_return"])


def run_grid(
    close: NDArray[np.float64],
    strategy: StrategyType,
    grid: Grid,
    config: BacktestConfig,
    window: slice | None = None,
) -> GridResult:
    """Metrics of every combination of ``grid``.

    ``window`` limits the account to some bars (an in- or out-of-sample period) while the indicators still see the
    whole series up to each bar, so an out-of-sample period starts with warmed-up indicators and no look-ahead.
    """
    close = np.ascontiguousarray(close, dtype=np.float64)
    rules = STRATEGY_CLASSES[strategy](close, grid, long_short=config.long_short)
    window = window or slice(0, close.shape[0])
    traded = close[window]
    block = max(1, BLOCK_CELLS // max(1, traded.shape[0]))
    columns = {name: np.empty(rules.size) for name in METRIC_NAMES}
    for start in range(0, rules.size, block):
        stop = min(start + block, rules.size)
        positions = np.ascontiguousarray(rules.positions(start, stop)[:, window])
        simulation = simulate(traded, positions, config.costs, config.initial_capital)
        metrics = compute(simulation, config.initial_capital, config.periods_per_year)
        for name in METRIC_NAMES:
            columns[name][start:stop] = metrics.column(name)
    return GridResult(columns)


def equity_curve(
    close: NDArray[np.float64], strategy: StrategyType, parameters: dict[str, float], config: BacktestConfig
) -> NDArray[np.float64]:
    """The equity curve of one combination (for the artifacts of the best cells)."""
    grid = {name: np.array([value], dtype=np.float64) for name, value in parameters.items()}
    close = np.ascontiguousarray(close, dtype=np.float64)
    rules = STRATEGY_CLASSES[strategy](close, grid, long_short=config.long_short)
    simulation = simulate(close, rules.positions(0, 1), config.costs, config.initial_capital)
    equity: NDArray[np.float64] = simulation.equity[0]
    return equity
