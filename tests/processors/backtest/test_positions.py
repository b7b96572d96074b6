import numpy as np

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
