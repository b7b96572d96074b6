import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from processors.backtest.engine import BacktestConfig, run_grid
from processors.backtest.simulation import Costs
from processors.sweeps.grid import grid_arrays
from processors.sweeps.walk_forward import FoldChoice, efficiency, walk_forward
from schemas.strategies import Signal, StrategyType
from schemas.sweeps import WalkForward

CONFIG = BacktestConfig(Costs(fee=0.001, slippage=0.0005), 10_000.0, 252.0, long_short=True)
PLAN = WalkForward(train_bars=300, test_bars=120)
CHOSEN = [{"fast": 5, "slow": 20}, {"fast": 5, "slow": 20}, {"fast": 10, "slow": 40}, {"fast": 8, "slow": 30}]


@pytest.fixture
def prices() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(17)
    close = 100 * np.exp(np.cumsum(rng.normal(0.0003, 0.012, 800)))
    dates = np.arange(np.datetime64("2015-01-01"), np.datetime64("2015-01-01") + 800)
    return close, dates


def choices(in_sample_cagr: list[float]) -> list[FoldChoice]:
    return [
        FoldChoice(fold, parameters, 1.0, {"cagr": cagr})
        for fold, (parameters, cagr) in enumerate(zip(CHOSEN, in_sample_cagr, strict=True))
    ]


def run(prices: tuple[np.ndarray, np.ndarray], in_sample_cagr: list[float]) -> tuple[dict, pa.Table]:
    close, dates = prices
    outcome = walk_forward(
        close, dates, StrategyType.SMA_CROSSOVER, Signal.REGIME, PLAN, choices(in_sample_cagr), CONFIG, "sharpe"
    )
    return outcome.report, pq.read_table(pa.BufferReader(outcome.curve))


def test_each_fold_trades_its_chosen_cell_on_its_test_window_as_the_grid_would_score_it_there(prices) -> None:
    report, _ = run(prices, [0.1] * 4)
    close, _ = prices
    assert [row["fold"] for row in report["folds"]] == [0, 1, 2, 3]
    for fold, row in zip(PLAN.folds(len(close)), report["folds"], strict=True):
        grid = run_grid(
            close[: fold.test_stop],
            StrategyType.SMA_CROSSOVER,
            grid_arrays([row["parameters"]]),
            CONFIG,
            window=slice(fold.test_start, fold.test_stop),
        )
        assert row["out_of_sample"]["total_return"] == pytest.approx(grid.metrics["total_return"][0], abs=1e-12)
        assert row["out_of_sample_score"] == pytest.approx(grid.metrics["sharpe"][0], abs=1e-12)
        assert row["test"]["bars"] == 120
        assert row["train"]["bars"] == 300


def test_the_stitched_account_compounds_the_folds_and_buy_and_hold_holds_over_the_same_bars(prices) -> None:
    report, curve = run(prices, [0.1] * 4)
    close, dates = prices
    folds = PLAN.folds(len(close))
    compounded = math.prod(1 + row["out_of_sample"]["total_return"] for row in report["folds"]) - 1
    assert report["out_of_sample"]["total_return"] == pytest.approx(compounded, abs=1e-12)
    held = math.prod(close[f.test_stop - 1] / close[f.test_start] for f in folds) - 1
    assert report["buy_and_hold"]["total_return"] == pytest.approx(held, abs=1e-12)
    assert report["out_of_sample"]["trades"] == sum(row["out_of_sample"]["trades"] for row in report["folds"])
    tested = np.concatenate([np.arange(f.test_start, f.test_stop) for f in folds])
    assert curve.column("date").to_pylist() == list(dates[tested].astype("datetime64[D]").tolist())
    assert curve.column("fold").to_pylist() == [f.index for f in folds for _ in range(f.test_start, f.test_stop)]
    equity = np.array(curve.column("equity").to_pylist())
    assert equity[-1] == pytest.approx(CONFIG.initial_capital * (1 + compounded), rel=1e-12)


def test_efficiency_is_out_of_sample_over_mean_in_sample_annual_return_and_counts_parameter_changes(prices) -> None:
    report, _ = run(prices, [0.1, 0.2, 0.3, 0.2])
    assert report["in_sample_cagr"] == pytest.approx(0.2)
    assert report["efficiency"] == pytest.approx(report["out_of_sample"]["cagr"] / 0.2)
    assert report["parameter_changes"] == 2
    assert report["parameter_change_rate"] == pytest.approx(2 / 3)


def test_efficiency_is_undefined_against_an_in_sample_loss() -> None:
    assert efficiency(0.05, -0.1) is None
    assert efficiency(0.05, 0.0) is None
    assert efficiency(None, 0.1) is None
    assert efficiency(-0.05, 0.1) == pytest.approx(-0.5)


def test_a_walk_forward_needs_one_choice_per_fold_in_order(prices) -> None:
    close, dates = prices
    with pytest.raises(ValueError, match="one choice per fold"):
        walk_forward(
            close, dates, StrategyType.SMA_CROSSOVER, Signal.REGIME, PLAN, choices([0.1] * 4)[:3], CONFIG, "sharpe"
        )
