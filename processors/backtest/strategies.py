"""Each strategy of the catalogue as position rules over a grid: indicators are computed once per distinct window,
then every block of combinations gathers its rows from them.

Every strategy has a long rule and a short (or exit) rule. Under ``Signal.REGIME`` a bar in a rule's state is a
signal: the crossovers and momentum hold their side while the state lasts, RSI and Bollinger latch the last side
signalled. Under ``Signal.CROSSING`` only the bar that crosses into a state is a signal, and the side is latched
from one cross to the next.
"""

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping

import numpy as np
from numpy.typing import NDArray

from processors.backtest import indicators
from processors.backtest.kernel import crossing_block, crossing_rows, regime_rows
from processors.backtest.positions import Positions, latch, regime
from schemas.strategies import Signal, StrategyType

Floats = NDArray[np.float64]
Grid = Mapping[str, NDArray[np.float64]]
"""Parameter name → one value per combination."""


class GridStrategy(ABC):
    def __init__(self, close: Floats, grid: Grid, *, long_short: bool, signal: Signal = Signal.REGIME) -> None:
        self.close = close
        self.long_short = long_short
        self.signal = signal
        self.size = len(next(iter(grid.values())))

    @abstractmethod
    def positions(self, start: int, stop: int, first: int = 0) -> Positions:
        """Target positions of combinations [start, stop) at the bars from ``first`` on, shape (stop - start,
        bars - first). Those of a later window depend on the bars before it (a latched side, the last cross), so
        most rules decide every bar and return the window's part; a regime decides each bar alone and skips the
        rest, which a walk-forward's later folds, reading years of bars before their window, save."""


def _rows(values: NDArray[np.float64]) -> tuple[NDArray[np.int64], NDArray[np.intp]]:
    """Distinct integer windows and, per combination, the row of its window among them."""
    windows = values.astype(np.int64)
    distinct, row = np.unique(windows, return_inverse=True)
    return distinct, row.astype(np.intp)


class _Crossover(GridStrategy):
    def __init__(self, close: Floats, grid: Grid, *, long_short: bool, signal: Signal = Signal.REGIME) -> None:
        super().__init__(close, grid, long_short=long_short, signal=signal)
        windows, rows = _rows(np.concatenate((grid["fast"], grid["slow"])))
        self._averages = self._average(close, windows)
        self._fast, self._slow = rows[: self.size], rows[self.size :]

    _average: Callable[[Floats, NDArray[np.int64]], Floats]

    def positions(self, start: int, stop: int, first: int = 0) -> Positions:
        return _pairs_of_rows(self._averages, self._fast[start:stop], self._slow[start:stop], self, first)


class SmaCrossover(_Crossover):
    _average = staticmethod(indicators.sma)


class EmaCrossover(_Crossover):
    _average = staticmethod(indicators.ema)


class RsiReversion(GridStrategy):
    def __init__(self, close: Floats, grid: Grid, *, long_short: bool, signal: Signal = Signal.REGIME) -> None:
        super().__init__(close, grid, long_short=long_short, signal=signal)
        windows, self._row = _rows(grid["window"])
        self._rsi = indicators.rsi(close, windows)
        self._lower, self._upper = grid["lower"], grid["upper"]

    def positions(self, start: int, stop: int, first: int = 0) -> Positions:
        rsi = self._rsi[self._row[start:stop]]
        lower, upper = self._lower[start:stop, None], self._upper[start:stop, None]
        if self.signal is Signal.CROSSING:
            return _crossings((lower, rsi), (rsi, upper), self.long_short)[:, first:]
        return latch(rsi < lower, rsi > upper, long_short=self.long_short)[:, first:]


class BollingerBands(GridStrategy):
    def __init__(self, close: Floats, grid: Grid, *, long_short: bool, signal: Signal = Signal.REGIME) -> None:
        super().__init__(close, grid, long_short=long_short, signal=signal)
        windows, self._row = _rows(grid["window"])
        self._mean = indicators.sma(close, windows)
        self._std = indicators.rolling_std(close, windows)
        self._width = grid["num_std"]

    def positions(self, start: int, stop: int, first: int = 0) -> Positions:
        rows = self._row[start:stop]
        mean, band = self._mean[rows], self._std[rows] * self._width[start:stop, None]
        lower, upper = mean - band, mean + band
        if self.signal is Signal.CROSSING:
            return _crossings((lower, self.close), (self.close, upper), self.long_short)[:, first:]
        return latch(self.close < lower, self.close > upper, long_short=self.long_short)[:, first:]


class Momentum(GridStrategy):
    def __init__(self, close: Floats, grid: Grid, *, long_short: bool, signal: Signal = Signal.REGIME) -> None:
        super().__init__(close, grid, long_short=long_short, signal=signal)
        windows, self._row = _rows(grid["window"])
        self._roc = indicators.rate_of_change(close, windows)
        self._threshold = grid["threshold"]

    def positions(self, start: int, stop: int, first: int = 0) -> Positions:
        roc = self._roc[self._row[start:stop]]
        threshold = self._threshold[start:stop, None]
        if self.signal is Signal.CROSSING:
            return _crossings((roc, threshold), (-threshold, roc), self.long_short)[:, first:]
        roc = roc[:, first:]
        return regime(roc > threshold, roc < -threshold, long_short=self.long_short)


class Macd(GridStrategy):
    def __init__(self, close: Floats, grid: Grid, *, long_short: bool, signal: Signal = Signal.REGIME) -> None:
        super().__init__(close, grid, long_short=long_short, signal=signal)
        windows, rows = _rows(np.concatenate((grid["fast"], grid["slow"])))
        emas = indicators.ema(close, windows)
        pairs, self._line = np.unique(
            np.stack((rows[: self.size], rows[self.size :]), axis=1), axis=0, return_inverse=True
        )
        lines = emas[pairs[:, 0]] - emas[pairs[:, 1]]
        signal_pairs, self._signal_line = np.unique(
            np.stack((self._line.ravel(), grid["signal"].astype(np.int64)), axis=1), axis=0, return_inverse=True
        )
        self._lines = lines
        self._signal_lines = indicators.ema_rows(lines[signal_pairs[:, 0]], signal_pairs[:, 1])
        self._line = self._line.ravel().astype(np.intp)
        self._signal_line = self._signal_line.ravel().astype(np.intp)
        self._table = np.ascontiguousarray(np.concatenate((self._lines, self._signal_lines)))

    def positions(self, start: int, stop: int, first: int = 0) -> Positions:
        # Lines and signal lines in one table, so that one regime kernel compares row pairs of it.
        signal_rows = self._signal_line[start:stop] + len(self._lines)
        return _pairs_of_rows(self._table, self._line[start:stop], signal_rows, self, first)


def _pairs_of_rows(
    table: Floats, above: NDArray[np.intp], below: NDArray[np.intp], strategy: GridStrategy, first: int
) -> Positions:
    """Long while (or, crossing, from when) row ``above`` of ``table`` is over row ``below``, from bar ``first``."""
    bars = table.shape[1]
    if strategy.signal is Signal.CROSSING:
        out = np.empty((len(above), bars), dtype=np.int8)
        crossing_rows(table, above, below, strategy.long_short, out)
        return out[:, first:]
    out = np.empty((len(above), bars - first), dtype=np.int8)
    regime_rows(table, above, below, first, strategy.long_short, out)
    return out


def _crossings(up: tuple[Floats, Floats], down: tuple[Floats, Floats], long_short: bool) -> Positions:
    """Long from each cross of up[0] above up[1] until down[0] crosses above down[1] (short then, if shorting).

    Each line is a (rows, bars) block or broadcasts to one, as a per-row level (rows, 1) or the close (bars,) does."""
    shape = np.broadcast_shapes(*(line.shape for line in (*up, *down)))
    up_x, up_y, down_x, down_y = (np.broadcast_to(line, shape) for line in (*up, *down))
    out = np.empty(shape, dtype=np.int8)
    crossing_block(up_x, up_y, down_x, down_y, long_short, out)
    return out


STRATEGY_CLASSES: dict[StrategyType, type[GridStrategy]] = {
    StrategyType.SMA_CROSSOVER: SmaCrossover,
    StrategyType.EMA_CROSSOVER: EmaCrossover,
    StrategyType.RSI_REVERSION: RsiReversion,
    StrategyType.BOLLINGER_BANDS: BollingerBands,
    StrategyType.MOMENTUM: Momentum,
    StrategyType.MACD: Macd,
}
