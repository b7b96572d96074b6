"""From target positions to an equity curve, for a block of parameter combinations at once.

Conventions (also in docs/backtesting.md):

- A position decided from bar t's close is filled at that close; it earns from bar t+1 on. No look-ahead.
- Every entry commits the whole equity. A long buys E / (c·(1+s)·(1+f)) units; a short sells E / (c·(1-s)·(1+f))
  units and keeps E as collateral. Exits fill at c·(1-s) (long) or c·(1+s) (short cover), less fee f. A reversal is
  an exit then an entry at the same close, with the proceeds.
- Equity is marked to market at every close.

These are the conventions of vectorbt's ``Portfolio.from_signals`` with ``size=inf`` and ``lock_cash=True``, so the
reference test can hold the two to 1e-9.
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
    entries = changed & (positions != 0)
    exits = changed & (previous != 0)

    entry_bar = np.where(entries, np.arange(n, dtype=np.int32), 0)
    np.maximum.accumulate(entry_bar, axis=1, out=entry_bar)
    entry_close = close[entry_bar]

    # Closed trades multiply the account by their exit factor; an open one is marked to market on top.
    exit_rows, exit_bars = np.nonzero(exits)
    exit_side = previous[exit_rows, exit_bars]
    exit_ratio = close[exit_bars] / entry_close[exit_rows, exit_bars - 1]
    exit_factor = np.where(
        exit_side > 0,
        exit_ratio * ((1 - slip) * (1 - fee) / ((1 + slip) * (1 + fee))),
        2 / (1 + fee) - exit_ratio * ((1 + slip) / (1 - slip)),
    )
    growth = np.ones((rows, n))
    growth[exit_rows, exit_bars] = exit_factor
    np.cumprod(growth, axis=1, out=growth)

    ratio = close / entry_close
    long_mark = ratio * (1 / ((1 + slip) * (1 + fee)))
    if (positions < 0).any():
        short_mark = 2 / (1 + fee) - ratio * (1 / ((1 - slip) * (1 + fee)))
        mark = np.where(positions > 0, long_mark, np.where(positions < 0, short_mark, 1.0))
    else:
        mark = np.where(positions > 0, long_mark, 1.0)
    growth *= mark
    growth *= initial_capital

    return Simulation(
        equity=growth,
        trades=np.count_nonzero(entries, axis=1),
        closed_trades=np.bincount(exit_rows, minlength=rows),
        winning_trades=np.bincount(exit_rows, weights=exit_factor > 1, minlength=rows).astype(np.int64),
        exposure=np.count_nonzero(positions, axis=1) / n,
    )
