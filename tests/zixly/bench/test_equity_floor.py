import numpy as np

from processors.backtest.engine import run_grid
from schemas.strategies import StrategyType
from zixly.bench.equity_floor import total_returns
from zixly.bench.sweep import CONFIG, WINDOWS, bench_prices, sma_pairs


def test_the_floor_loop_ends_every_backtest_with_the_engines_total_return() -> None:
    close, windows = bench_prices(), WINDOWS[:30]
    grid = sma_pairs(windows)
    floor = total_returns(close, windows, grid["fast"], grid["slow"], CONFIG.costs.fee, CONFIG.costs.slippage)
    engine = run_grid(close, StrategyType.SMA_CROSSOVER, grid, CONFIG).metrics["total_return"]
    assert floor.shape == engine.shape == (len(grid["fast"]),)
    np.testing.assert_allclose(floor, engine, rtol=0, atol=1e-9)
    assert np.ptp(floor) > 0.1, "the grid's backtests differ, so agreement means something"
