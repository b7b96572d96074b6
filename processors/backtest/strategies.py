"""Each strategy of the catalogue as position rules over a grid: indicators are computed once per distinct window,
then every block of combinations gathers its rows from them.
"""

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping

import numpy as np
from numpy.typing import NDArray

from processors.backtest import indicators
from processors.backtest.kernel import regime_rows
from processors.backtest.positions import Positions, latch, regime
from schemas.strategies import StrategyType

Floats = NDArray[np.float64]
Grid = Mapping[str, NDArray[np.float64]]
"""Parameter name → one value per combination."""


class GridStrategy(ABC):
    def __init__(self, close: Floats, grid: Grid, *, long_short: bool) -> None:
        self.close = close
        self.long_short = long_short
        self.size = len(next(iter(grid.values())))

    @abstractmethod
    def positions(self, start: int, stop: int) -> Positions:
        """Target positions of combinations [start, stop), shape (stop - start, bars)."""


def _rows(values: NDArray[np.float64]) -> tuple[NDArray[np.int64], NDArray[np.intp]]:
    """Distinct integer windows and, per combination, the row of its window among them."""
    windows = values.astype(np.int64)
    distinct, row = np.unique(windows, return_inverse=True)
    return distinct, row.astype(np.intp)


class _Crossover(GridStrategy):
    def __init__(self, close: Floats, grid: Grid, *, long_short: bool) -> None:
        super().__init__(close, grid, long_short=long_short)
        windows, rows = _rows(np.concatenate((grid["fast"], grid["slow"])))
        self._averages = self._average(close, windows)
        self._fast, self._slow = rows[: self.size], rows[self.size :]

    _average: Callable[[Floats, NDArray[np.int64]], Floats]

    def positions(self, start: int, stop: int) -> Positions:
        out = np.empty((stop - start, self.close.shape[0]), dtype=np.int8)
        regime_rows(self._averages, self._fast[start:stop], self._slow[start:stop], self.long_short, out)
        return out


class SmaCrossover(_Crossover):
    _average = staticmethod(indicators.sma)


class EmaCrossover(_Crossover):
    _average = staticmethod(indicators.ema)


class RsiReversion(GridStrategy):
    def __init__(self, close: Floats, grid: Grid, *, long_short: bool) -> None:
        super().__init__(close, grid, long_short=long_short)
        windows, self._row = _rows(grid["window"])
        self._rsi = indicators.rsi(close, windows)
        self._lower, self._upper = grid["lower"], grid["upper"]

    def positions(self, start: int, stop: int) -> Positions:
        rsi = self._rsi[self._row[start:stop]]
        go_long = rsi < self._lower[start:stop, None]
        go_short = rsi > self._upper[start:stop, None]
        return latch(go_long, go_short, long_short=self.long_short)


class BollingerBands(GridStrategy):
    def __init__(self, close: Floats, grid: Grid, *, long_short: bool) -> None:
        super().__init__(close, grid, long_short=long_short)
        windows, self._row = _rows(grid["window"])
        self._mean = indicators.sma(close, windows)
        self._std = indicators.rolling_std(close, windows)
        self._width = grid["num_std"]

    def positions(self, start: int, stop: int) -> Positions:
        rows = self._row[start:stop]
        mean, band = self._mean[rows], self._std[rows] * self._width[start:stop, None]
        go_long = self.close < mean - band
        go_short = self.close > mean + band
        return latch(go_long, go_short, long_short=self.long_short)


class Momentum(GridStrategy):
    def __init__(self, close: Floats, grid: Grid, *, long_short: bool) -> None:
        super().__init__(close, grid, long_short=long_short)
        windows, self._row = _rows(grid["window"])
        self._roc = indicators.rate_of_change(close, windows)
        self._threshold = grid["threshold"]

    def positions(self, start: int, stop: int) -> Positions:
        roc = self._roc[self._row[start:stop]]
        threshold = self._threshold[start:stop, None]
        return regime(roc > threshold, roc < -threshold, long_short=self.long_short)


class Macd(GridStrategy):
    def __init__(self, close: Floats, grid: Grid, *, long_short: bool) -> None:
        super().__init__(close, grid, long_short=long_short)
        windows, rows = _rows(np.concatenate((grid["fast"], grid["slow"])))
        emas = indicators.ema(close, windows)
        pairs, self._line = np.unique(
            np.stack((rows[: self.size], rows[self.size :]), axis=1), axis=0, return_inverse=True
        )
        lines = emas[pairs[:, 0]] - emas[pairs[:, 1]]
        signal_pairs, self._signal = np.unique(
            np.stack((self._line.ravel(), grid["signal"].astype(np.int64)), axis=1), axis=0, return_inverse=True
        )
        self._lines = lines
        self._signals = indicators.ema_rows(lines[signal_pairs[:, 0]], signal_pairs[:, 1])
        self._line = self._line.ravel().astype(np.intp)
        self._signal = self._signal.ravel().astype(np.intp)
        self._table = np.ascontiguousarray(np.concatenate((self._lines, self._signals)))

    def positions(self, start: int, stop: int) -> Positions:
        # Lines and signal lines in one table, so that one regime kernel compares row pairs of it.
        out = np.empty((stop - start, self.close.shape[0]), dtype=np.int8)
        regime_rows(
            self._table, self._line[start:stop], self._signal[start:stop] + len(self._lines), self.long_short, out
        )
        return out


STRATEGY_CLASSES: dict[StrategyType, type[GridStrategy]] = {
    StrategyType.SMA_CROSSOVER: SmaCrossover,
    StrategyType.EMA_CROSSOVER: EmaCrossover,
    StrategyType.RSI_REVERSION: RsiReversion,
    StrategyType.BOLLINGER_BANDS: BollingerBands,
    StrategyType.MOMENTUM: Momentum,
    StrategyType.MACD: Macd,
}
