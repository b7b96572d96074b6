import pytest
from pydantic import ValidationError

from schemas.sweeps import MAX_FOLDS, Fold, TradingSweepParameters, WalkForward, walk_forward_problem


def sweep(**overrides: object) -> dict[str, object]:
    return {
        "tickers": ["ACME"],
        "strategies": [{"type": "momentum", "parameters": {"window": [5], "threshold": [0]}}],
        "data_source": "synthetic",
    } | overrides


def test_rolling_folds_move_their_training_window_on_by_the_step_and_test_the_bars_right_after_it() -> None:
    plan = WalkForward(train_bars=100, test_bars=20)
    assert plan.folds(160) == [Fold(0, 0, 100, 100, 120), Fold(1, 20, 120, 120, 140), Fold(2, 40, 140, 140, 160)]


def test_anchored_folds_train_from_the_first_bar_on_a_growing_window() -> None:
    plan = WalkForward(train_bars=100, test_bars=20, anchored=True)
    assert [(f.train_start, f.train_stop) for f in plan.folds(160)] == [(0, 100), (0, 120), (0, 140)]


def test_a_step_longer_than_the_test_leaves_bars_untested_and_only_whole_folds_count() -> None:
    plan = WalkForward(train_bars=100, test_bars=20, step_bars=30)
    assert plan.folds(179) == [Fold(0, 0, 100, 100, 120), Fold(1, 30, 130, 130, 150)]
    assert plan.fold_count(180) == 3
    assert plan.fold_count(119) == 0


def test_a_step_shorter_than_the_test_is_refused_as_it_would_trade_bars_twice() -> None:
    with pytest.raises(ValidationError, match="test windows would overlap"):
        WalkForward(train_bars=100, test_bars=20, step_bars=10)


def test_a_series_too_short_for_one_fold_or_long_enough_for_too_many_is_named_with_its_numbers() -> None:
    plan = WalkForward(train_bars=100, test_bars=20)
    assert walk_forward_problem(plan, "ACME", 119) == (
        "ACME has 119 bars; a walk-forward fold needs train_bars + test_bars = 120"
    )
    assert walk_forward_problem(plan, "ACME", 120) is None
    too_long = 100 + 20 * (MAX_FOLDS + 1)
    assert f"make {MAX_FOLDS + 1} walk-forward folds; at most {MAX_FOLDS}" in str(
        walk_forward_problem(plan, "ACME", too_long)
    )


def test_a_sweep_takes_either_a_split_or_a_walk_forward_and_walks_forward_only_on_its_own_workers() -> None:
    walk = {"walk_forward": {"train_bars": 100, "test_bars": 20}}
    assert TradingSweepParameters.model_validate(sweep(validation=walk)).walk_forward == WalkForward(
        train_bars=100, test_bars=20
    )
    with pytest.raises(ValidationError, match="either a split or a walk-forward"):
        TradingSweepParameters.model_validate(sweep(validation=walk, split={"in_sample_fraction": 0.5}))
    with pytest.raises(ValidationError, match="not with execution external"):
        TradingSweepParameters.model_validate(sweep(validation=walk, execution="external"))
    with pytest.raises(ValidationError, match="train_bars"):
        TradingSweepParameters.model_validate(sweep(validation={"walk_forward": {"train_bars": 1, "test_bars": 20}}))
