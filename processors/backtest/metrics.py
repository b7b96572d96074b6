"""Performance metrics of a block of equity curves, one value per combination.

Returns are bar-over-bar changes of equity, the first one against the initial capital. Ratios that divide by zero
(no variance, no downside, no drawdown) are NaN: undefined rather than infinite, and ranked last.
"""

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from processors.backtest.simulation import Simulation

Floats = NDArray[np.float64]

METRIC_NAMES = (
    "total_return",
    "cagr",
    "volatility",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "win_rate",
    "trades",
    "exposure",
)


@dataclass(frozen=True)
class Metrics:
    total_return: Floats
    cagr: Floats
    """Compounded growth per year: (final / initial) ** (periods_per_year / bars) - 1."""
    volatility: Floats
    """Standard deviation of bar returns (ddof=1), annualised by sqrt(periods_per_year)."""
    sharpe: Floats
    """mean / std of bar returns (risk-free rate 0) * sqrt(periods_per_year)."""
    sortino: Floats
    """Annualised mean return / annualised root-mean-square of the negative returns."""
    calmar: Floats
    """CAGR / |max drawdown|."""
    max_drawdown: Floats
    """Worst fall from a previous high of the equity curve, as a negative fraction."""
    win_rate: Floats
    """Share of closed trades that made money; NaN without closed trades."""
    trades: NDArray[np.int64]
    exposure: Floats

    def column(self, name: str) -> NDArray[np.float64] | NDArray[np.int64]:
        value: NDArray[np.float64] | NDArray[np.int64] = getattr(self, name)
        return value


def compute(simulation: Simulation, initial_capital: float, periods_per_year: float) -> Metrics:
    curve = curve_metrics(simulation.equity, initial_capital, periods_per_year)
    with np.errstate(invalid="ignore", divide="ignore"):
        closed = simulation.closed_trades
        win_rate = np.where(closed > 0, simulation.winning_trades / np.maximum(closed, 1), np.nan)
    return Metrics(
        **curve,
        win_rate=win_rate,
        trades=simulation.trades,
        exposure=simulation.exposure,
    )


def curve_metrics(equity: Floats, initial_capital: float, periods_per_year: float) -> dict[str, Floats]:
    """The metrics an equity curve alone decides (all but the trade counts), per row of ``equity``."""
    n = equity.shape[1]
    returns = np.empty_like(equity)
    np.divide(equity[:, 1:], equity[:, :-1], out=returns[:, 1:])
    returns[:, 0] = equity[:, 0] / initial_capital
    returns -= 1.0

    final = equity[:, -1] / initial_capital
    total_return = final - 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        cagr = np.where(final > 0, np.abs(final) ** (periods_per_year / n) - 1.0, -1.0)
        mean = returns.sum(axis=1) / n
        # One pass of sums of squares instead of numpy's two-pass std: bar returns are small, so the subtraction
        # below loses nothing that matters at the 1e-12 level.
        squares = np.einsum("ij,ij->i", returns, returns)
        std = np.sqrt(np.maximum(squares - n * mean * mean, 0.0) / (n - 1))
        sharpe = np.where(std > 0, mean / std * np.sqrt(periods_per_year), np.nan)
        downside = np.minimum(returns, 0.0, out=returns)
        downside_risk = np.sqrt(np.einsum("ij,ij->i", downside, downside) / n) * np.sqrt(periods_per_year)
        sortino = np.where(downside_risk > 0, mean * periods_per_year / downside_risk, np.nan)

        peak = np.maximum.accumulate(equity, axis=1)
        max_drawdown = (equity / peak).min(axis=1) - 1.0
        calmar = np.where(max_drawdown < 0, cagr / np.abs(max_drawdown), np.nan)

    return {
        "total_return": total_return,
        "cagr": cagr,
        "volatility": std * np.sqrt(periods_per_year),
        "sharpe": sharpe,
        "sortino": sortino,
        "calmar": calmar,
        "max_drawdown": max_drawdown,
    }
