import numpy as np
import pytest

from processors.backtest.kernel import crossing_block, crossing_rows, regime_rows
from processors.backtest.positions import latch, regime
from processors.backtest.strategies import STRATEGY_CLASSES
from schemas.strategies import Signal, StrategyType


def test_regime_is_long_above_short_below_and_flat_otherwise() -> None:
    above = np.array([[True, False, False]])
    below = np.array([[False, True, False]])
    assert regime(above, below, long_short=True).tolist() == [[1, -1, 0]]
    assert regime(above, below, long_short=False).tolist() == [[1, 0, 0]]


def test_latch_holds_the_last_signal_until_the_opposite_one() -> None:
    go_long = np.array([[False, True, False, False, False, True]])
    go_short = np.array([[False, False, False, True, False, False]])
    assert latch(go_long, go_short, long_short=True).tolist() == [[0, 1, 1, -1, -1, 1]]
    assert latch(go_long, go_short, long_short=False).tolist() == [[0, 1, 1, 0, 0, 1]]


def test_latch_keeps_its_state_when_both_signals_fire() -> None:
    go_long = np.array([[True, True]])
    go_short = np.array([[False, True]])
    assert latch(go_long, go_short, long_short=True).tolist() == [[1, 1]]


def crossing(fast: list[float], slow: list[float], *, long_short: bool) -> list[int]:
    out = np.empty((1, len(fast)), dtype=np.int8)
    values = np.array([fast, slow], dtype=np.float64)
    crossing_rows(values, np.array([0], dtype=np.intp), np.array([1], dtype=np.intp), long_short, out)
    return [int(v) for v in out[0]]


def test_a_crossing_waits_for_the_first_cross_where_a_regime_enters_at_once() -> None:
    fast, slow = [3.0, 3.0, 1.0, 3.0, 3.0], [2.0, 2.0, 2.0, 2.0, 2.0]
    assert crossing(fast, slow, long_short=False) == [0, 0, 0, 1, 1]
    regime_out = np.empty((1, 5), dtype=np.int8)
    regime_rows(
        np.array([fast, slow]), np.array([0], dtype=np.intp), np.array([1], dtype=np.intp), 0, False, regime_out
    )
    assert regime_out.tolist() == [[1, 1, 0, 1, 1]]


def test_a_cross_below_exits_or_reverses_into_a_short() -> None:
    fast, slow = [1.0, 3.0, 3.0, 1.0, 1.0, 3.0], [2.0] * 6
    assert crossing(fast, slow, long_short=False) == [0, 1, 1, 0, 0, 1]
    assert crossing(fast, slow, long_short=True) == [0, 1, 1, -1, -1, 1]


def test_a_touch_is_no_cross_but_the_bar_leaving_it_is_as_vectorbt_counts_them() -> None:
    # Below, above (a cross), equal, above again: vectorbt counts the second rise as a cross too.
    fast, slow = [1.0, 3.0, 2.0, 3.0], [2.0] * 4
    assert crossing(fast, slow, long_short=True) == [0, 1, 1, 1]
    # Touching from above and going back up is not a cross below.
    fast, slow = [1.0, 3.0, 2.0, 3.0, 1.0], [2.0] * 5
    assert crossing(fast, slow, long_short=True) == [0, 1, 1, 1, -1]


def test_a_missing_value_forgets_which_side_a_line_was_on() -> None:
    nan = float("nan")
    # Below, then a gap, then above: no cross, for no bar below was seen since the gap.
    assert crossing([1.0, nan, 3.0, 3.0], [2.0] * 4, long_short=False) == [0, 0, 0, 0]
    # A position already taken is kept across a gap (there is no signal in a gap).
    assert crossing([1.0, 3.0, nan, 3.0], [2.0] * 4, long_short=False) == [0, 1, 1, 1]


def test_the_crossovers_kernel_agrees_with_two_crossing_machines_on_ties_and_gaps() -> None:
    # Small whole numbers tie often; a few gaps reset the machines.
    rng = np.random.default_rng(5)
    values = rng.integers(0, 4, size=(40, 300)).astype(np.float64)
    values[rng.random(values.shape) < 0.02] = np.nan
    fast, slow = np.arange(0, 40, 2, dtype=np.intp), np.arange(1, 40, 2, dtype=np.intp)
    for long_short in (False, True):
        ours = np.empty((20, 300), dtype=np.int8)
        crossing_rows(values, fast, slow, long_short, ours)
        machines = np.empty((20, 300), dtype=np.int8)
        crossing_block(values[fast], values[slow], values[slow], values[fast], long_short, machines)
        np.testing.assert_array_equal(ours, machines)
        assert (ours != 0).any()


@pytest.mark.parametrize("signal", list(Signal))
@pytest.mark.parametrize("strategy", list(StrategyType))
def test_the_positions_of_a_later_window_are_those_of_the_whole_series_from_its_first_bar(
    strategy: StrategyType, signal: Signal
) -> None:
    close = 100 * np.exp(np.cumsum(np.random.default_rng(5).normal(0, 0.02, 400)))
    grid = {
        name: np.array(values, dtype=np.float64)
        for name, values in {
            StrategyType.SMA_CROSSOVER: {"fast": [3, 5, 8], "slow": [20, 20, 40]},
            StrategyType.EMA_CROSSOVER: {"fast": [3, 5, 8], "slow": [20, 20, 40]},
            StrategyType.RSI_REVERSION: {"window": [7, 14, 14], "lower": [30, 25, 35], "upper": [70, 75, 65]},
            StrategyType.BOLLINGER_BANDS: {"window": [10, 20, 20], "num_std": [1.5, 2.0, 1.0]},
            StrategyType.MOMENTUM: {"window": [5, 10, 20], "threshold": [0.0, 0.01, 0.02]},
            StrategyType.MACD: {"fast": [5, 8, 12], "slow": [20, 26, 30], "signal": [5, 9, 9]},
        }[strategy].items()
    }
    for long_short in (False, True):
        rules = STRATEGY_CLASSES[strategy](close, grid, long_short=long_short, signal=signal)
        whole = rules.positions(0, 3)
        assert whole.shape == (3, 400)
        for first in (0, 1, 150, 399):
            np.testing.assert_array_equal(rules.positions(0, 3, first), whole[:, first:])
            np.testing.assert_array_equal(rules.positions(1, 3, first), whole[1:, first:])
