"""From target positions to an equity curve, for a block of parameter combinations at once.

Conventions (also in docs/backtesting.md):

- A position decided from bar t's close is filled at that close; it earns from bar t+1 on. No look-ahead.
- Every entry commits the whole equity. A long buys E / (c·(1+s)·(1+f)) units; a short sells E / (c·(1-s)·(1+f))
  units and keeps E as collateral. Exits fill at c·(1-s) (long) or c·(1+s) (short cover), less fee f. A reversal is
  an exit then an entry at the same close, with the proceeds.
- Equity is marked to market at every close.

These are the conventions of vectorbt's ``Portfolio.from_signals`` with ``size=inf`` and ``lock_cash=True``, so the
reference test can hold the two to 1e-9.

This module and ``metrics`` are the vectorised statement of the conventions, kept as the reference that the compiled
kernel (``kernel.simulate_block``, which the engine runs) is tested against.
"""

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from processors.backtest.positions import Positions

Floats = NDArray[np.float64]


@dataclass(frozen=True)
class Costs:
    fee: float
    """Fraction of traded notional paid per fill."""
    slippage: float
    """Fraction by which every fill price is worse than the close."""


@dataclass(frozen=True)
class Simulation:
    equity: Floats
    """(combinations, bars) account value at each close."""
    trades: NDArray[np.int64]
    """Entries per combination, the open one included."""
    closed_trades: NDArray[np.int64]
    winning_trades: NDArray[np.int64]
    exposure: Floats
    """Fraction of bars holding a position."""


def simulate(close: Floats, positions: Positions, costs: Costs, initial_capital: float) -> Simulation:
    rows, n = positions.shape
    fee, slip = costs.fee, costs.slippage
    previous = np.empty_like(positions)
    previous[:, 0] = 0
    previous[:, 1:] = positions[:, :-1]
    changed = positions != previous

    # Between two position changes the equity is linear in the close: A + B·close. So the dense work is one
    # forward fill of "last change" and two gathers; everything per trade happens on the sparse list of changes.
    event_rows, event_bars = np.nonzero(changed)
    old_side = previous[event_rows, event_bars]
    new_side = positions[event_rows, event_bars]
    event_close = close[event_bars]

    # A change that closes a trade multiplies the account by the trade's exit factor; the trade's entry was the
    # row's previous change (sorted by row, then bar), so its entry close is one element back.
    closing = old_side != 0
    entry_close = np.empty_like(event_close)
    entry_close[1:] = event_close[:-1]
    ratio = np.divide(event_close, entry_close, out=np.ones_like(event_close), where=closing)
    factor = np.where(
        old_side > 0,
        ratio * ((1 - slip) * (1 - fee) / ((1 + slip) * (1 + fee))),
        np.where(closing, 2 / (1 + fee) - ratio * ((1 + slip) / (1 - slip)), 1.0),
    )
    equity_at_event = initial_capital * _cumprod_by_row(factor, event_rows, rows)

    # Coefficients after each change, in a (rows, n + 1) table whose column 0 is "before the first change".
    intercept = np.empty((rows, n + 1))
    slope = np.empty((rows, n + 1))
    intercept[:, 0] = initial_capital
    slope[:, 0] = 0.0
    cells = (event_rows, event_bars + 1)
    intercept[cells] = np.where(
        new_side < 0, equity_at_event * (2 / (1 + fee)), np.where(new_side == 0, equity_at_event, 0.0)
    )
    slope[cells] = np.where(
        new_side > 0,
        equity_at_event / (event_close * ((1 + slip) * (1 + fee))),
        np.where(new_side < 0, -equity_at_event / (event_close * ((1 - slip) * (1 + fee))), 0.0),
    )
    # intp indexes: np.take converts any other integer type first, which costs more than the gather itself.
    last_change = np.where(changed, np.arange(1, n + 1, dtype=np.intp), 0)
    np.maximum.accumulate(last_change, axis=1, out=last_change)
    flat = (last_change + (np.arange(rows, dtype=np.intp) * (n + 1))[:, None]).ravel()
    equity = np.take(slope.ravel(), flat).reshape(rows, n)
    equity *= close
    equity += np.take(intercept.ravel(), flat).reshape(rows, n)

    winning = closing & (factor > 1)
    return Simulation(
        equity=equity,
        trades=np.bincount(event_rows, weights=new_side != 0, minlength=rows).astype(np.int64),
        closed_trades=np.bincount(event_rows, weights=closing, minlength=rows).astype(np.int64),
        winning_trades=np.bincount(event_rows, weights=winning, minlength=rows).astype(np.int64),
        exposure=np.count_nonzero(positions, axis=1) / n,
    )


def _cumprod_by_row(factor: Floats, rows: NDArray[np.intp], row_count: int) -> Floats:
    """Running product of ``factor`` restarting at each new row (``rows`` is sorted).

    Each row is multiplied on its own, so a combination's result never depends on its neighbours in the block.
    """
    if factor.size == 0:
        return factor.copy()
    counts = np.bincount(rows, minlength=row_count)
    row_start = np.concatenate(([0], np.cumsum(counts)[:-1]))
    column = np.arange(factor.size) - np.repeat(row_start, counts)
    padded = np.ones((row_count, int(counts.max())))
    padded[rows, column] = factor
    np.cumprod(padded, axis=1, out=padded)
    product: Floats = padded[rows, column]
    return product
