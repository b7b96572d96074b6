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
    windowed = _Windowed(close, strategy, grid, config, signal, window)
    rules, traded = windowed.rules, windowed.traded
    block = max(1, BLOCK_CELLS // max(1, traded.shape[0]))
    out = np.empty((rules.size, OUTPUT_COLUMNS))
    no_curve = np.empty((0, 0))
    for start in range(0, rules.size, block):
        stop = min(start + block, rules.size)
        _simulate(traded, windowed.positions(start, stop), config, out[start:stop], no_curve)
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
    windowed = _Windowed(close, strategy, grid, config, signal, window)
    out = np.empty((1, OUTPUT_COLUMNS))
    curve = np.empty((1, windowed.traded.shape[0]))
    _simulate(windowed.traded, windowed.positions(0, 1), config, out, curve)
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


class _Windowed:
    """A grid's rules over the whole series and the window its accounts trade: the one setup of ``run_grid`` and
    ``backtest_cell``, which must see a window alike."""

    def __init__(
        self,
        close: NDArray[np.float64],
        strategy: StrategyType,
        grid: Grid,
        config: BacktestConfig,
        signal: Signal,
        window: slice | None,
    ) -> None:
        close = np.ascontiguousarray(close, dtype=np.float64)
        self.rules = STRATEGY_CLASSES[strategy](close, grid, long_short=config.long_short, signal=signal)
        self._first, self._last, _ = (window or slice(None)).indices(close.shape[0])
        self.traded = np.ascontiguousarray(close[self._first : self._last])

    def positions(self, start: int, stop: int) -> NDArray[np.int8]:
        """Combinations [start, stop) over the window's bars."""
        window = self.rules.positions(start, stop, self._first)[:, : self._last - self._first]
        return np.ascontiguousarray(window)


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
