"""The practical floor of a backtest: one compiled loop per combination that keeps only the equity path.

The same SMA crossover, fills, fees and slippage as the engine (long only), and nothing else: no positions table,
no metrics but the final equity. What a sweep cannot go below per bar in Python's reach; ``zixly bench sweep``
shows how close to it the full-metrics engine runs, and checks that both end with the same total return.
"""

import numpy as np
from numba import njit
from numpy.typing import NDArray

from processors.backtest.indicators import sma


@njit(cache=True, nogil=True)
def _final_equity(
    averages: NDArray[np.float64],
    close: NDArray[np.float64],
    fast_rows: NDArray[np.intp],
    slow_rows: NDArray[np.intp],
    fee: float,
    slippage: float,
    out: NDArray[np.float64],
) -> None:
    buy = (1.0 + slippage) * (1.0 + fee)
    sell = (1.0 - slippage) * (1.0 - fee)
    for i in range(fast_rows.shape[0]):
        fast = averages[fast_rows[i]]
        slow = averages[slow_rows[i]]
        cash = 1.0
        units = 0.0
        for t in range(close.shape[0]):
            wanted = fast[t] > slow[t]
            if wanted and units == 0.0:
                units = cash / (close[t] * buy)
                cash = 0.0
            elif not wanted and units != 0.0:
                cash = units * close[t] * sell
                units = 0.0
        out[i] = (cash + units * close[-1]) - 1.0


def total_returns(
    close: NDArray[np.float64],
    windows: NDArray[np.int64],
    fast: NDArray[np.float64],
    slow: NDArray[np.float64],
    fee: float,
    slippage: float,
) -> NDArray[np.float64]:
    """Each (fast, slow) pair's total return; the pairs' windows must be among ``windows``."""
    averages = sma(close, windows)
    row_of = {int(w): row for row, w in enumerate(windows)}
    fast_rows = np.array([row_of[int(w)] for w in fast], dtype=np.intp)
    slow_rows = np.array([row_of[int(w)] for w in slow], dtype=np.intp)
    out = np.empty(fast_rows.shape[0])
    _final_equity(averages, close, fast_rows, slow_rows, fee, slippage, out)
    return out
