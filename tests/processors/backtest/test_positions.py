import numpy as np

from processors.backtest.kernel import crossing_block, crossing_rows, regime_rows
from processors.backtest.positions import latch, regime


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
    regime_rows(np.array([fast, slow]), np.array([0], dtype=np.intp), np.array([1], dtype=np.intp), False, regime_out)
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
