import numpy as np
import pytest

from processors.backtest.kernel import OUTPUT_COLUMNS, simulate_block
from processors.backtest.metrics import METRIC_NAMES, compute
from processors.backtest.simulation import Costs, simulate

CLOSE = np.array([10.0, 11.0, 12.0, 9.0, 9.0, 10.0])
FREE = Costs(fee=0.0, slippage=0.0)


def positions(*values: int) -> np.ndarray:
    return np.array([values], dtype=np.int8)


def test_a_position_taken_at_a_close_earns_from_the_next_bar() -> None:
    equity = simulate(CLOSE, positions(1, 1, 0, 0, 0, 0), FREE, 100.0).equity[0]
    # Bought at 10, marked at 11, sold at 12.
    assert equity.tolist() == pytest.approx([100.0, 110.0, 120.0, 120.0, 120.0, 120.0])


def test_a_short_gains_what_the_price_loses() -> None:
    equity = simulate(CLOSE, positions(0, 0, -1, -1, 0, 0), FREE, 100.0).equity[0]
    # Shorted at 12, covered at 9: 100 · (2 - 9/12).
    assert equity[-1] == pytest.approx(125.0)


def test_fees_and_slippage_are_charged_on_each_fill() -> None:
    costs = Costs(fee=0.01, slippage=0.02)
    equity = simulate(CLOSE, positions(1, 0, 0, 0, 0, 0), costs, 100.0).equity[0]
    bought = 100.0 / (10 * 1.02 * 1.01)
    assert equity[0] == pytest.approx(bought * 10)
    assert equity[1] == pytest.approx(bought * 11 * 0.98 * 0.99)


def test_a_reversal_closes_the_long_and_shorts_with_the_proceeds() -> None:
    equity = simulate(CLOSE, positions(1, -1, -1, 0, 0, 0), FREE, 100.0).equity[0]
    after_long = 110.0
    assert equity[3] == pytest.approx(after_long * (2 - 9 / 11))


def test_trades_wins_and_exposure_are_counted_per_combination() -> None:
    simulation = simulate(CLOSE, np.array([[1, 0, 1, 0, 1, 1], [0, 0, 0, 0, 0, 0]], dtype=np.int8), FREE, 1.0)
    assert simulation.trades.tolist() == [3, 0]
    assert simulation.closed_trades.tolist() == [2, 0]
    assert simulation.winning_trades.tolist() == [1, 0]
    assert simulation.exposure.tolist() == pytest.approx([4 / 6, 0.0])


def test_future_prices_do_not_change_the_past() -> None:
    rng = np.random.default_rng(1)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 200)))
    held = rng.integers(-1, 2, (4, 200)).astype(np.int8)
    changed_future = close.copy()
    changed_future[120:] *= 3
    before = simulate(close, held, Costs(0.001, 0.001), 1000.0).equity[:, :120]
    after = simulate(changed_future, held, Costs(0.001, 0.001), 1000.0).equity[:, :120]
    np.testing.assert_array_equal(before, after)


def test_a_combination_that_never_trades_has_undefined_ratios_not_infinite_ones() -> None:
    simulation = simulate(CLOSE, positions(0, 0, 0, 0, 0, 0), FREE, 100.0)
    metrics = compute(simulation, 100.0, 252)
    assert metrics.total_return[0] == 0.0
    assert metrics.max_drawdown[0] == 0.0
    assert np.isnan(metrics.sharpe[0])
    assert np.isnan(metrics.calmar[0])
    assert np.isnan(metrics.win_rate[0])


def test_max_drawdown_is_the_worst_fall_from_a_previous_high() -> None:
    simulation = simulate(CLOSE, positions(1, 1, 1, 1, 1, 1), FREE, 100.0)
    assert compute(simulation, 100.0, 252).max_drawdown[0] == pytest.approx(9 / 12 - 1)


@pytest.mark.parametrize(("fee", "slippage"), [(0.0, 0.0), (0.001, 0.0005), (0.02, 0.01)])
def test_the_compiled_kernel_agrees_with_the_vectorised_reference(fee: float, slippage: float) -> None:
    rng = np.random.default_rng(5)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, 700)))
    # Runs of random sides, so that trades last a while, with longs, shorts and reversals.
    held = np.repeat(rng.integers(-1, 2, (64, 70)), 10, axis=1).astype(np.int8)
    costs = Costs(fee, slippage)
    reference = compute(simulate(close, held, costs, 1000.0), 1000.0, 252)
    out = np.empty((64, OUTPUT_COLUMNS))
    curve = np.empty((64, 700))
    simulate_block(close, held, fee, slippage, 1000.0, 252.0, out, curve)
    np.testing.assert_allclose(curve, simulate(close, held, costs, 1000.0).equity, rtol=1e-12)
    for column, name in enumerate(METRIC_NAMES):
        np.testing.assert_allclose(
            out[:, column], reference.column(name), rtol=1e-10, atol=1e-12, equal_nan=True, err_msg=name
        )
