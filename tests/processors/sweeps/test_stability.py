import math

import numpy as np
import pytest

from processors.sweeps.stability import neighbourhoods, product_layout
from schemas.sweeps import StrategyGrid


def brute_force(grid: StrategyGrid, scores: np.ndarray) -> list[tuple[float | None, float | None, int]]:
    """Each combination's neighbours found by comparing axis positions, one pair at a time."""
    axes = grid.axes()
    combinations = grid.combinations()
    position = [tuple(axes[name].index(c[name]) for name in axes) for c in combinations]
    out = []
    for i, here in enumerate(position):
        near = [
            scores[j]
            for j, there in enumerate(position)
            if j != i and all(abs(a - b) <= 1 for a, b in zip(here, there, strict=True)) and not math.isnan(scores[j])
        ]
        out.append((sum(near) / len(near) if near else None, min(near) if near else None, len(near)))
    return out


@pytest.mark.parametrize(
    "grid",
    [
        {"type": "sma_crossover", "parameters": {"fast": [2, 4, 6, 8, 10], "slow": [5, 9, 12, 20]}},
        {"type": "rsi_reversion", "parameters": {"window": [7, 14, 21], "lower": [20, 30, 40], "upper": [35, 60, 70]}},
        {"type": "momentum", "parameters": {"window": [5, 10, 20, 40], "threshold": [0, 0.01]}},
    ],
)
def test_each_cells_neighbourhood_is_the_cells_one_step_away_on_any_axis_that_keep_the_rules(grid: dict) -> None:
    strategy_grid = StrategyGrid.model_validate(grid)
    count = strategy_grid.combination_count()
    scores = np.random.default_rng(3).normal(size=count)
    scores[::7] = np.nan  # undefined scores are nobody's neighbours
    found = neighbourhoods(strategy_grid, scores)
    assert found is not None
    for index, (mean, worst, neighbours) in enumerate(brute_force(strategy_grid, scores)):
        assert found.of(index) == {
            "mean": pytest.approx(mean) if mean is not None else None,
            "worst": worst,
            "neighbours": neighbours,
        }


def test_a_lone_spike_has_a_poor_neighbourhood_and_a_plateau_a_good_one() -> None:
    grid = StrategyGrid.model_validate(
        {"type": "momentum", "parameters": {"window": [1, 2, 3, 4, 5], "threshold": [0]}}
    )
    found = neighbourhoods(grid, np.array([2.0, 2.1, 1.9, -1.0, 3.0]))
    assert found is not None
    plateau, spike = found.of(1), found.of(4)
    assert plateau == {"mean": pytest.approx(1.95), "worst": 1.9, "neighbours": 2}
    assert spike == {"mean": -1.0, "worst": -1.0, "neighbours": 1}


def test_scores_that_do_not_match_the_grid_are_refused() -> None:
    grid = StrategyGrid.model_validate({"type": "momentum", "parameters": {"window": [1, 2], "threshold": [0]}})
    with pytest.raises(ValueError, match="3 scores for a grid of 2 combinations"):
        neighbourhoods(grid, np.zeros(3))


def test_the_layout_finds_each_combination_at_its_place_in_the_grid_and_back() -> None:
    grid = StrategyGrid.model_validate({"type": "sma_crossover", "parameters": {"fast": [5, 10, 30], "slow": [20, 30]}})
    layout = product_layout(grid)
    assert layout is not None
    assert layout.shape == (3, 2)
    assert len(layout.flat) == grid.combination_count() == 4
    for index, combination in enumerate(grid.combinations()):
        assert layout.index_of(combination) == index
        assert layout.parameters_at(index) == combination
    assert layout.index_of({"fast": 30, "slow": 20}) is None  # breaks fast < slow
    assert layout.index_of({"fast": 7, "slow": 20}) is None  # not a value of the grid


def test_a_product_too_large_to_lay_out_has_no_neighbourhoods(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("processors.sweeps.stability.MAX_PRODUCT", 5)
    grid = StrategyGrid.model_validate({"type": "sma_crossover", "parameters": {"fast": [5, 10, 30], "slow": [20, 30]}})
    assert neighbourhoods(grid, np.zeros(4)) is None
