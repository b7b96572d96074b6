"""Both signal semantics against vectorbt, on real daily prices and on a seeded synthetic series.

The crossovers' lines come from vectorbt's own indicators (MA, MACD), their crossings from vectorbt's
``crossed_above``/``crossed_below`` (what ``ma_crossed_above``/``ma_crossed_below`` call), and vectorbt's
``Portfolio.from_signals`` turns those signals into trades: nothing of ours is between the prices and vectorbt's
figures. For RSI, Bollinger bands and momentum, whose lines are ours (held to the usual definitions in
test_indicators.py), vectorbt still finds the crossings and trades them.
"""

import warnings
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from processors.backtest import indicators
from processors.backtest.engine import BacktestConfig, run_grid
from processors.backtest.simulation import Costs
from schemas.strategies import Signal, StrategyType

vbt = pytest.importorskip("vectorbt", reason="vectorbt is in the dev extra; `make test` installs it")

PERIODS_PER_YEAR = 252
COSTS = Costs(fee=0.001, slippage=0.0005)
CONFIGS = {long_short: BacktestConfig(COSTS, 10_000.0, PERIODS_PER_YEAR, long_short) for long_short in (False, True)}


def goog_daily_closes() -> pd.Series:
    """Alphabet's daily closes 2004-2013 (2,148 bars), the data backtesting.py ships for its examples; read from
    its file so that backtesting.py's plotting stack is not imported."""
    spec = find_spec("backtesting")
    assert spec is not None, "backtesting is in the dev extra"
    assert spec.submodule_search_locations
    path = Path(next(iter(spec.submodule_search_locations))) / "test" / "GOOG.csv"
    frame = pd.read_csv(path, index_col=0, parse_dates=True)
    return frame["Close"].astype(np.float64)


def synthetic_closes() -> pd.Series:
    rng = np.random.default_rng(23)
    prices = 80 * np.exp(np.cumsum(rng.normal(0.0003, 0.017, 2000)))
    return pd.Series(prices, index=pd.bdate_range("2012-01-02", periods=prices.size))


@pytest.fixture(scope="module", params=["goog-daily", "synthetic"])
def close(request: pytest.FixtureRequest) -> pd.Series:
    return goog_daily_closes() if request.param == "goog-daily" else synthetic_closes()


def frame(rows: np.ndarray, like: pd.Series) -> pd.DataFrame:
    """Rows of lines (one per combination) as vectorbt's columns."""
    return pd.DataFrame(np.asarray(rows, dtype=np.float64).T, index=like.index)


def portfolio(close: pd.Series, up: pd.DataFrame, down: pd.DataFrame, *, long_short: bool) -> Any:
    """vectorbt's own state machine over the signals: long from ``up``, out (or short) at ``down``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vbt.settings.returns["year_freq"] = f"{PERIODS_PER_YEAR} days"
        shorts = {"short_entries": down, "short_exits": up} if long_short else {}
        return vbt.Portfolio.from_signals(
            close,
            entries=up,
            exits=down,
            **shorts,
            fees=COSTS.fee,
            slippage=COSTS.slippage,
            init_cash=10_000.0,
            freq="1D",
            lock_cash=True,
        )


def regime_portfolio(close: pd.Series, upper: pd.DataFrame, lower: pd.DataFrame, *, long_short: bool) -> Any:
    lower.columns = upper.columns
    above, below = upper > lower, upper < lower
    was_above, was_below = above.shift(fill_value=False), below.shift(fill_value=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vbt.settings.returns["year_freq"] = f"{PERIODS_PER_YEAR} days"
        shorts = {"short_entries": below & ~was_below, "short_exits": ~below & was_below} if long_short else {}
        return vbt.Portfolio.from_signals(
            close,
            entries=above & ~was_above,
            exits=~above & was_above,
            **shorts,
            fees=COSTS.fee,
            slippage=COSTS.slippage,
            init_cash=10_000.0,
            freq="1D",
            lock_cash=True,
        )


def assert_matches(ours: dict[str, np.ndarray], theirs: Any) -> None:
    assert (theirs.trades.count().to_numpy() > 0).all(), "a combination that never trades would prove nothing"
    np.testing.assert_allclose(ours["total_return"], theirs.total_return().to_numpy(), rtol=0, atol=1e-9)
    # A short can lose more than the account: vectorbt has no CAGR for an equity that ends below zero, ours says -1.
    solvent = ours["total_return"] > -1
    assert (ours["cagr"][~solvent] == -1).all()
    np.testing.assert_allclose(ours["cagr"][solvent], theirs.annualized_return().to_numpy()[solvent], rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours["volatility"], theirs.annualized_volatility().to_numpy(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours["max_drawdown"], theirs.max_drawdown().to_numpy(), rtol=0, atol=1e-9)
    np.testing.assert_array_equal(ours["trades"], theirs.trades.count().to_numpy())


def crossover_lines(close: pd.Series, strategy: StrategyType) -> tuple[dict[str, np.ndarray], Any, Any]:
    """A grid of the strategy, and its two lines per combination as vectorbt computes them."""
    if strategy is StrategyType.MACD:
        fast, slow, signal_span = np.array([[8, 26, 5], [12, 26, 9], [5, 35, 5]]).T
        macd = vbt.MACD.run(
            close, fast, slow, signal_span, macd_ewm=True, signal_ewm=True, adjust=False, per_column=False
        )
        grid = {"fast": fast, "slow": slow, "signal": signal_span}
        return {k: v.astype(np.float64) for k, v in grid.items()}, macd.macd, macd.signal
    fast, slow = np.array([[5, 20], [10, 30], [20, 50], [10, 100]]).T
    ewm = strategy is StrategyType.EMA_CROSSOVER
    upper = vbt.MA.run(close, fast, ewm=ewm, adjust=False, per_column=False).ma
    lower = vbt.MA.run(close, slow, ewm=ewm, adjust=False, per_column=False).ma
    return {"fast": fast.astype(np.float64), "slow": slow.astype(np.float64)}, upper, lower


CROSSOVERS = [StrategyType.SMA_CROSSOVER, StrategyType.EMA_CROSSOVER, StrategyType.MACD]


@pytest.mark.parametrize("long_short", [False, True], ids=["long-only", "long-short"])
@pytest.mark.parametrize("signal", list(Signal))
@pytest.mark.parametrize("strategy", CROSSOVERS)
def test_crossovers_match_vectorbts_own_lines_and_crossings(
    close: pd.Series, strategy: StrategyType, signal: Signal, long_short: bool
) -> None:
    grid, upper, lower = crossover_lines(close, strategy)
    upper, lower = frame(upper.to_numpy().T, close), frame(lower.to_numpy().T, close)
    if signal is Signal.CROSSING:
        up, down = upper.vbt.crossed_above(lower), upper.vbt.crossed_below(lower)
        theirs = portfolio(close, up, down, long_short=long_short)
    else:
        theirs = regime_portfolio(close, upper, lower, long_short=long_short)
    ours = run_grid(close.to_numpy(), strategy, grid, CONFIGS[long_short], signal=signal).metrics
    assert_matches(ours, theirs)


def level_lines(close: pd.Series, strategy: StrategyType) -> tuple[dict[str, np.ndarray], pd.DataFrame, ...]:
    """A grid of the strategy, and (long line, over it, short line, over it): long from a cross of the first pair,
    short (or out) from a cross of the second."""
    prices = close.to_numpy()
    if strategy is StrategyType.RSI_REVERSION:
        # Shorting GOOG's rally on an overbought RSI ruins many accounts past zero, where the two libraries part
        # ways (ours goes on trading a negative equity): these combinations stay solvent on both series.
        window, lower, upper = np.array([[7, 25, 80], [7, 30, 80], [14, 35, 70]], dtype=np.float64).T
        rsi = indicators.rsi(prices, window.astype(np.int64))
        lines = (lower[:, None] + 0 * rsi, rsi, rsi, upper[:, None] + 0 * rsi)
        grid = {"window": window, "lower": lower, "upper": upper}
    elif strategy is StrategyType.BOLLINGER_BANDS:
        window, width = np.array([[20, 2.0], [10, 1.5], [30, 1.0]]).T
        mean = indicators.sma(prices, window.astype(np.int64))
        band = indicators.rolling_std(prices, window.astype(np.int64)) * width[:, None]
        every = np.broadcast_to(prices, mean.shape)
        lines = (mean - band, every, every, mean + band)
        grid = {"window": window, "num_std": width}
    else:
        window, threshold = np.array([[10, 0.02], [20, 0.0], [60, 0.05]]).T
        roc = indicators.rate_of_change(prices, window.astype(np.int64))
        lines = (roc, threshold[:, None] + 0 * roc, -threshold[:, None] + 0 * roc, roc)
        grid = {"window": window, "threshold": threshold}
    return grid, *(frame(line, close) for line in lines)


@pytest.mark.parametrize("long_short", [False, True], ids=["long-only", "long-short"])
@pytest.mark.parametrize("strategy", [StrategyType.RSI_REVERSION, StrategyType.BOLLINGER_BANDS, StrategyType.MOMENTUM])
def test_level_strategies_trade_vectorbts_crossings(close: pd.Series, strategy: StrategyType, long_short: bool) -> None:
    grid, long_x, long_y, short_x, short_y = level_lines(close, strategy)
    long_y.columns = long_x.columns
    short_y.columns = short_x.columns
    theirs = portfolio(
        close, long_x.vbt.crossed_above(long_y), short_x.vbt.crossed_above(short_y), long_short=long_short
    )
    ours = run_grid(close.to_numpy(), strategy, grid, CONFIGS[long_short], signal=Signal.CROSSING).metrics
    assert_matches(ours, theirs)


def test_on_googs_daily_closes_the_semantics_differ_as_the_two_libraries_do() -> None:
    """SMA 10/30 with a 0.1 % fee and no slippage on GOOG: the regime enters on the first bar where both averages
    exist; the crossing waits for the first cross, as vectorbt and backtesting.py's own example do."""
    close = goog_daily_closes().to_numpy()
    grid = {"fast": np.array([10.0]), "slow": np.array([30.0])}
    config = BacktestConfig(Costs(fee=0.001, slippage=0.0), 10_000.0, PERIODS_PER_YEAR, False)
    regime = run_grid(close, StrategyType.SMA_CROSSOVER, grid, config, signal=Signal.REGIME).metrics
    crossing = run_grid(close, StrategyType.SMA_CROSSOVER, grid, config, signal=Signal.CROSSING).metrics
    assert (round(float(regime["total_return"][0]), 2), int(regime["trades"][0])) == (7.31, 34)
    assert (round(float(crossing["total_return"][0]), 2), int(crossing["trades"][0])) == (5.02, 33)
