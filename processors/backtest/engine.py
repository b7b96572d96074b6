"""Backtesting a whole grid: positions, simulation and metrics block by block, so memory stays bounded."""

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from processors.backtest.kernel import OUTPUT_COLUMNS, simulate_block
from processors.backtest.metrics import METRIC_NAMES
from processors.backtest.simulation import Costs
from processors.backtest.strategies import STRATEGY_CLASSES, Grid
from schemas.strategies import Signal, StrategyType

# Positions are materialised a block at a time (one byte per cell): 4 M cells keep that block a few MB.
BLOCK_CELLS = 4_000_000


@dataclass(frozen=True)
class BacktestConfig:
    costs: Costs
    initial_capital: float
    periods_per_year: float
    long_short: bool


@dataclass(frozen=True)
class GridResult:
    metrics: dict[str, NDArray[np.float64]]
    """Metric name -> one value per combination, in grid order."""

    @property
    def size(self) -> int:
        return len(self.metrics["total_return"])


def run_grid(
    close: NDArray[np.float64],
    strategy: StrategyType,
    grid: Grid,
    config: BacktestConfig,
    window: slice | None = None,
    signal: Signal = Signal.REGIME,
) -> GridResult:
    """Metrics of every combination of ``grid``.

    ``window`` limits the account to some bars (an in- or out-of-sample period) while the indicators still see the
    whole series up to each bar, so an out-of-sample period starts with warmed-up indicators and no look-ahead.
    """
    close = np.ascontiguousarray(close, dtype=np.float64)
    rules = STRATEGY_CLASSES[strategy](close, grid, long_short=config.long_short, signal=signal)
    first, last, _ = (window or slice(None)).indices(close.shape[0])
    traded = np.ascontiguousarray(close[first:last])
    block = max(1, BLOCK_CELLS // max(1, traded.shape[0]))
    out = np.empty((rules.size, OUTPUT_COLUMNS))
    no_curve = np.empty((0, 0))
    for start in range(0, rules.size, block):
        stop = min(start + block, rules.size)
        positions = np.ascontiguousarray(rules.positions(start, stop, first)[:, : last - first])
        _simulate(traded, positions, config, out[start:stop], no_curve)
    return GridResult({name: np.ascontiguousarray(out[:, column]) for column, name in enumerate(METRIC_NAMES)})


@dataclass(frozen=True)
class CellBacktest:
    metrics: dict[str, float]
    equity: NDArray[np.float64]
    """The account at each close of the window."""


def backtest_cell(
    close: NDArray[np.float64],
    strategy: StrategyType,
    parameters: dict[str, float],
    config: BacktestConfig,
    signal: Signal = Signal.REGIME,
    window: slice | None = None,
) -> CellBacktest:
    """One combination's metrics and equity curve over ``window`` (all bars by default), as ``run_grid`` sees it."""
    grid = {name: np.array([value], dtype=np.float64) for name, value in parameters.items()}
    close = np.ascontiguousarray(close, dtype=np.float64)
    rules = STRATEGY_CLASSES[strategy](close, grid, long_short=config.long_short, signal=signal)
    first, last, _ = (window or slice(None)).indices(close.shape[0])
    traded = np.ascontiguousarray(close[first:last])
    out = np.empty((1, OUTPUT_COLUMNS))
    curve = np.empty((1, traded.shape[0]))
    positions = np.ascontiguousarray(rules.positions(0, 1, first)[:, : last - first])
    _simulate(traded, positions, config, out, curve)
    return CellBacktest({name: float(out[0, column]) for column, name in enumerate(METRIC_NAMES)}, curve[0])


def equity_curve(
    close: NDArray[np.float64],
    strategy: StrategyType,
    parameters: dict[str, float],
    config: BacktestConfig,
    signal: Signal = Signal.REGIME,
) -> NDArray[np.float64]:
    """The equity curve of one combination (for the artifacts of the best cells)."""
    return backtest_cell(close, strategy, parameters, config, signal).equity


def _simulate(
    close: NDArray[np.float64],
    positions: NDArray[np.int8],
    config: BacktestConfig,
    out: NDArray[np.float64],
    curve: NDArray[np.float64],
) -> None:
    simulate_block(
        close,
        positions,
        config.costs.fee,
        config.costs.slippage,
        config.initial_capital,
        config.periods_per_year,
        out,
        curve,
    )
