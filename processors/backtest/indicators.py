"""Indicators over many windows at once: each function returns one row per window, NaN until the window is full.

Each matches the usual library definition (pandas ``rolling`` / ``ewm(adjust=False)``), which the tests check.
"""

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]


def sma(close: Floats, windows: NDArray[np.int64]) -> Floats:
    """Simple moving averages, one row per window."""
    n = close.shape[0]
    out = np.full((windows.shape[0], n), np.nan)
    # A running sum differenced over each window is O(n) per window; the sum is re-based on the series mean so
    # that the subtraction loses as few digits as possible.
    base = float(np.mean(close))
    csum = np.concatenate(([0.0], np.cumsum(close - base)))
    for row, window in enumerate(windows):
        w = int(window)
        if w <= n:
            out[row, w - 1 :] = (csum[w:] - csum[:-w]) / w + base
    return out


def ema(series: Floats, windows: NDArray[np.int64]) -> Floats:
    """Exponential moving averages (span ``w``, alpha 2/(w+1)), seeded with the first value, NaN for w-1 bars."""
    return _ewm_rows(np.broadcast_to(series, (windows.shape[0], series.shape[-1])), _span_alpha(windows), windows)


def ema_rows(rows: Floats, windows: NDArray[np.int64]) -> Floats:
    """EMA of each row with its own span; leading NaNs in a row are skipped (the row starts at its first value)."""
    return _ewm_rows(rows, _span_alpha(windows), windows)


def _span_alpha(windows: NDArray[np.int64]) -> Floats:
    return np.asarray(2.0 / (windows + 1.0), dtype=np.float64)


def rsi(close: Floats, windows: NDArray[np.int64]) -> Floats:
    """Wilder's RSI: average gains and losses smoothed with alpha 1/w, NaN until w changes are seen."""
    delta = np.diff(close, prepend=np.nan)
    gains = np.where(delta > 0, delta, 0.0)
    losses = np.where(delta < 0, -delta, 0.0)
    gains[0] = losses[0] = np.nan
    rows = windows.shape[0]
    alphas = 1.0 / windows.astype(np.float64)
    avg_gain = _ewm_rows(np.broadcast_to(gains, (rows, close.shape[0])), alphas, windows)
    avg_loss = _ewm_rows(np.broadcast_to(losses, (rows, close.shape[0])), alphas, windows)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)
    # No losses at all in the window means RSI 100, not NaN.
    out[(avg_loss == 0) & (avg_gain > 0)] = 100.0
    return out


def rolling_std(close: Floats, windows: NDArray[np.int64]) -> Floats:
    """Population standard deviation over each window (ddof=0, as Bollinger bands use it)."""
    n = close.shape[0]
    out = np.full((windows.shape[0], n), np.nan)
    for row, window in enumerate(windows):
        w = int(window)
        if w <= n:
            # Direct per-window std rather than sum-of-squares, which cancels catastrophically on price levels.
            out[row, w - 1 :] = np.lib.stride_tricks.sliding_window_view(close, w).std(axis=-1)
    return out


def rate_of_change(close: Floats, windows: NDArray[np.int64]) -> Floats:
    """close[t] / close[t-w] - 1."""
    n = close.shape[0]
    out = np.full((windows.shape[0], n), np.nan)
    for row, window in enumerate(windows):
        w = int(window)
        if w < n:
            out[row, w:] = close[w:] / close[:-w] - 1.0
    return out


def _ewm_rows(rows: Floats, alphas: Floats, windows: NDArray[np.int64]) -> Floats:
    """pandas ``ewm(alpha, adjust=False, min_periods=w)`` of every row: a loop over bars, vectorised over rows."""
    count, n = rows.shape
    out = np.empty((count, n))
    alphas = np.asarray(alphas, dtype=np.float64)
    keep = 1.0 - alphas
    state = np.full(count, np.nan)
    for t in range(n):
        x = rows[:, t]
        valid = ~np.isnan(x)
        started = ~np.isnan(state)
        state = np.where(valid & started, alphas * x + keep * state, np.where(valid & ~started, x, state))
        out[:, t] = state
    # min_periods counts observations, so a row whose first value came late fills later too.
    first_full = _first_index_reaching(rows, windows)
    out[np.arange(n)[None, :] < first_full[:, None]] = np.nan
    return out


def _first_index_reaching(rows: Floats, windows: NDArray[np.int64]) -> NDArray[np.int64]:
    counts = np.cumsum(~np.isnan(rows), axis=1)
    reached = counts >= windows[:, None]
    first = np.argmax(reached, axis=1)
    first[~reached.any(axis=1)] = rows.shape[1]
    return np.asarray(first, dtype=np.int64)
