"""The engine against vectorbt, an independent implementation, on the same prices and the same conventions.

vectorbt is told the engine's positions as entry/exit signals, so this checks the simulation and every metric;
SMA signals are also derived independently with vectorbt's own moving averages.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

from processors.backtest.engine import BacktestConfig, run_grid
from processors.backtest.simulation import Costs
from processors.backtest.strategies import STRATEGY_CLASSES
from schemas.strategies import StrategyType
from schemas.sweeps import StrategyGrid

vbt = pytest.importorskip("vectorbt", reason="vectorbt is in the dev extra; `make test` installs it")

PERIODS_PER_YEAR = 252
COSTS = Costs(fee=0.001, slippage=0.0005)

GRIDS = {
    StrategyType.SMA_CROSSOVER: {"fast": {"start": 2, "stop": 30, "step": 4}, "slow": [10, 40, 90]},
    StrategyType.EMA_CROSSOVER: {"fast": [3, 8, 12], "slow": [20, 50]},
    StrategyType.RSI_REVERSION: {"window": [7, 14], "lower": [25, 30], "upper": [65, 75]},
    StrategyType.BOLLINGER_BANDS: {"window": [10, 20], "num_std": [1.0, 1.5, 2.5]},
    StrategyType.MOMENTUM: {"window": [5, 20, 60], "threshold": [0.0, 0.02]},
    StrategyType.MACD: {"fast": [8, 12], "slow": [26], "signal": [5, 9]},
}


@pytest.fixture(scope="module")
def close() -> pd.Series:
    rng = np.random.default_rng(11)
    prices = 50 * np.exp(np.cumsum(rng.normal(0.0002, 0.018, 1500)))
    return pd.Series(prices, index=pd.date_range("2016-01-01", periods=prices.size, freq="D"))


def grid_arrays(strategy: StrategyType) -> dict[str, np.ndarray]:
    combinations = StrategyGrid(type=strategy, parameters=GRIDS[strategy]).combinations()  # type: ignore[arg-type]
    return {name: np.array([c[name] for c in combinations]) for name in combinations[0]}


def vectorbt_portfolio(close: pd.Series, held: np.ndarray) -> "vbt.Portfolio":
    held = held.T
    before = np.vstack([np.zeros((1, held.shape[1]), dtype=held.dtype), held[:-1]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vbt.settings.returns["year_freq"] = f"{PERIODS_PER_YEAR} days"
        return vbt.Portfolio.from_signals(
            close,
            entries=(held == 1) & (before != 1),
            exits=(held != 1) & (before == 1),
            short_entries=(held == -1) & (before != -1),
            short_exits=(held != -1) & (before == -1),
            fees=COSTS.fee,
            slippage=COSTS.slippage,
            init_cash=10_000.0,
            freq="1D",
            lock_cash=True,
        )


def assert_close(ours: np.ndarray, theirs: np.ndarray, tolerance: float) -> None:
    theirs = np.where(np.isinf(theirs), np.nan, theirs)  # vectorbt says inf where we say "undefined"
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=tolerance, equal_nan=True)


@pytest.mark.parametrize("long_short", [False, True], ids=["long-only", "long-short"])
@pytest.mark.parametrize("strategy", list(StrategyType))
def test_every_metric_matches_vectorbt(close: pd.Series, strategy: StrategyType, long_short: bool) -> None:
    grid = grid_arrays(strategy)
    config = BacktestConfig(COSTS, 10_000.0, PERIODS_PER_YEAR, long_short)
    ours = run_grid(close.to_numpy(), strategy, grid, config).metrics
    held = STRATEGY_CLASSES[strategy](close.to_numpy(), grid, long_short=long_short).positions(
        0, len(grid["fast" if "fast" in grid else "window"])
    )
    assert (held != 0).any(), "a grid that never trades would prove nothing"
    theirs = vectorbt_portfolio(close, held)

    assert_close(ours["total_return"], theirs.total_return().to_numpy(), 1e-9)
    assert_close(ours["sharpe"], theirs.sharpe_ratio().to_numpy(), 1e-6)
    assert_close(ours["max_drawdown"], theirs.max_drawdown().to_numpy(), 1e-6)
    assert_close(ours["sortino"], theirs.sortino_ratio().to_numpy(), 1e-6)
    assert_close(ours["calmar"], theirs.calmar_ratio().to_numpy(), 1e-6)
    assert_close(ours["cagr"], theirs.annualized_return().to_numpy(), 1e-9)
    assert_close(ours["volatility"], theirs.annualized_volatility().to_numpy(), 1e-9)
    assert_close(ours["win_rate"], theirs.trades.closed.win_rate().to_numpy(), 1e-12)
    np.testing.assert_array_equal(ours["trades"], theirs.trades.count().to_numpy())


def test_sma_positions_match_vectorbts_own_moving_averages(close: pd.Series) -> None:
    grid = grid_arrays(StrategyType.SMA_CROSSOVER)
    held = STRATEGY_CLASSES[StrategyType.SMA_CROSSOVER](close.to_numpy(), grid, long_short=False).positions(
        0, len(grid["fast"])
    )
    fast = vbt.MA.run(close, window=grid["fast"].astype(int), per_column=False).ma.to_numpy().T
    slow = vbt.MA.run(close, window=grid["slow"].astype(int)).ma.to_numpy().T
    np.testing.assert_array_equal(held, (fast > slow).astype(np.int8))
