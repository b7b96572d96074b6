from processors.sweeps.grid import in_sample_bars, plan_chunks
from schemas.sweeps import StrategyGrid, TradingSweepParameters, ValueRange


def sweep(**overrides: object) -> TradingSweepParameters:
    return TradingSweepParameters.model_validate(
        {
            "tickers": ["AAPL", "MSFT"],
            "strategies": [
                {
                    "type": "sma_crossover",
                    "parameters": {"fast": {"start": 2, "stop": 11, "step": 1}, "slow": [20, 30]},
                },
                {"type": "momentum", "parameters": {"window": [5, 10, 20], "threshold": [0.0]}},
            ],
        }
        | overrides
    )


def test_an_inclusive_range_keeps_its_last_value_despite_float_steps() -> None:
    assert ValueRange(start=0.1, stop=0.3, step=0.1).values() == [0.1, 0.2, 0.3]
    assert ValueRange(start=2, stop=10, step=4).values() == [2, 6, 10]
    assert ValueRange(start=2, stop=11, step=4).values() == [2, 6, 10]


def test_combinations_leave_out_the_ones_breaking_an_ordering_rule_and_keep_windows_whole() -> None:
    grid = StrategyGrid.model_validate({"type": "sma_crossover", "parameters": {"fast": [5, 10, 20], "slow": [10, 30]}})
    assert grid.combinations() == [
        {"fast": 5, "slow": 10},
        {"fast": 5, "slow": 30},
        {"fast": 10, "slow": 30},
        {"fast": 20, "slow": 30},
    ]
    assert all(isinstance(v, int) for c in grid.combinations() for v in c.values())
    assert grid.product_size() == 6


def test_chunks_cover_every_combination_of_every_ticker_exactly_once() -> None:
    parameters = sweep()
    chunks = plan_chunks(parameters, chunk_size=7, bars={})
    covered = [(c.ticker, c.strategy_index, i) for c in chunks for i in range(c.start, c.stop)]
    assert len(covered) == len(set(covered)) == 2 * (20 + 3)
    assert max(c.size for c in chunks) == 7


def test_the_plan_is_the_same_every_time() -> None:
    assert plan_chunks(sweep(), 5, {}) == plan_chunks(sweep(), 5, {})


def test_the_in_sample_part_leaves_room_for_an_out_of_sample_part() -> None:
    assert in_sample_bars(100, None) == 100
    assert in_sample_bars(100, 0.7) == 70
    assert in_sample_bars(10, 0.9) == 8


def test_a_walk_forward_plans_every_grid_once_per_fold_of_each_ticker() -> None:
    parameters = sweep(validation={"walk_forward": {"train_bars": 100, "test_bars": 50}})
    chunks = plan_chunks(parameters, chunk_size=7, bars={"AAPL": 250, "MSFT": 150})
    covered = [(c.ticker, c.fold, c.strategy_index, i) for c in chunks for i in range(c.start, c.stop)]
    assert len(covered) == len(set(covered)) == (3 + 1) * (20 + 3)
    assert sorted({(c.ticker, c.fold) for c in chunks}) == [("AAPL", 0), ("AAPL", 1), ("AAPL", 2), ("MSFT", 0)]
    assert {c.fold for c in plan_chunks(sweep(), 7, {})} == {None}
