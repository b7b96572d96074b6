import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from processors.sweeps.compute import (
    DataChanged,
    GridStability,
    MarketDataConfig,
    evaluate_cells,
    fingerprints,
    grid_combinations,
    grid_stability,
    ranked_bars,
    run_chunk,
)
from processors.sweeps.stability import neighbourhoods
from schemas.sweeps import SweepChunk, TradingSweepParameters


@pytest.fixture
def config(tmp_path: Path) -> MarketDataConfig:
    return MarketDataConfig(files_folder=tmp_path, http_base_url=None, http_timeout_seconds=1, http_attempts=1)


def parameters(**overrides: object) -> TradingSweepParameters:
    return TradingSweepParameters.model_validate(
        {
            "tickers": ["ACME"],
            "data_source": "synthetic",
            "start": "2018-01-01",
            "end": "2020-12-31",
            "strategies": [{"type": "sma_crossover", "parameters": {"fast": [5, 10, 20], "slow": [50, 100]}}],
            "rank_by": "sharpe",
        }
        | overrides
    )


def chunk(config: MarketDataConfig, sweep: TradingSweepParameters, start: int = 0, stop: int = 6) -> SweepChunk:
    [data] = fingerprints(config, sweep)
    return SweepChunk(
        job_id=uuid.uuid4(),
        tenant_id="acme",
        correlation_id="c",
        causation_id=uuid.uuid4(),
        chunk_index=0,
        chunk_count=1,
        ticker="ACME",
        strategy_index=0,
        start=start,
        stop=stop,
        data=data,
        parameters=sweep,
    )


def test_a_chunk_yields_one_row_per_combination_scored_by_the_ranking_metric(config: MarketDataConfig) -> None:
    output = run_chunk(chunk(config, parameters()).model_dump_json(), config)
    assert [row["parameters"] for row in output.rows][:2] == [{"fast": 5, "slow": 50}, {"fast": 5, "slow": 100}]
    assert all(row["score"] == row["metrics"]["sharpe"] for row in output.rows)
    table = pq.read_table(pa.BufferReader(output.parquet))
    assert table.num_rows == 6
    assert {"ticker", "strategy_type", "parameters", "score", "sharpe", "max_drawdown"} <= set(table.column_names)


def test_a_chunk_runs_the_signal_its_strategy_asked_for(config: MarketDataConfig) -> None:
    grid = {"type": "sma_crossover", "parameters": {"fast": [5, 10, 20], "slow": [50, 100]}}
    regime = run_chunk(chunk(config, parameters(strategies=[grid])).model_dump_json(), config)
    crossing = run_chunk(
        chunk(config, parameters(strategies=[grid | {"signal": "crossing"}])).model_dump_json(), config
    )
    assert [row["parameters"] for row in crossing.rows] == [row["parameters"] for row in regime.rows]
    assert [row["metrics"] for row in crossing.rows] != [row["metrics"] for row in regime.rows]


def test_running_a_chunk_again_gives_identical_results(config: MarketDataConfig) -> None:
    work = chunk(config, parameters()).model_dump_json()
    assert run_chunk(work, config).rows == run_chunk(work, config).rows


def test_a_chunk_whose_prices_changed_since_planning_refuses_to_run(config: MarketDataConfig, tmp_path: Path) -> None:
    (tmp_path / "ACME.csv").write_text("date,close\n" + "".join(f"2020-01-{d:02d},{10 + d}\n" for d in range(1, 29)))
    sweep = parameters(
        data_source="files",
        start=None,
        end=None,
        strategies=[{"type": "momentum", "parameters": {"window": [2], "threshold": [0]}}],
    )
    work = chunk(config, sweep, stop=1)
    (tmp_path / "ACME.csv").write_text("date,close\n" + "".join(f"2020-01-{d:02d},{20 + d}\n" for d in range(1, 29)))
    with pytest.raises(DataChanged, match="changed since the sweep was planned"):
        run_chunk(work.model_dump_json(), config)


def test_out_of_sample_metrics_cover_only_the_bars_after_the_split(config: MarketDataConfig) -> None:
    sweep = parameters(split={"in_sample_fraction": 0.5, "top_n": 2})
    [data] = fingerprints(config, sweep)
    [report] = evaluate_cells(
        sweep.model_dump_json(),
        "ACME",
        data.sha256,
        data.periods_per_year,
        [("sma_crossover", {"fast": 5, "slow": 50}, True)],
        config,
    )
    assert report.out_of_sample is not None
    assert report.out_of_sample["exposure"] is not None
    curve = pq.read_table(pa.BufferReader(report.curve or b""))
    assert curve.num_rows == data.bars


def test_the_chunks_of_a_grid_cover_its_combinations_once_each_in_order(config: MarketDataConfig) -> None:
    sweep = parameters(
        strategies=[{"type": "sma_crossover", "parameters": {"fast": [5, 10, 20, 60], "slow": [50, 100, 150]}}]
    )
    # fast 60 is not below slow 50: 11 valid pairs, in chunks of 4, from the grid kept between chunks
    covered = [
        row["parameters"]
        for start in range(0, 11, 4)
        for row in run_chunk(chunk(config, sweep, start, min(start + 4, 11)).model_dump_json(), config).rows
    ]
    assert covered == sweep.strategies[0].combinations()
    assert grid_combinations.cache_info().hits >= 2


def test_a_walk_forward_fold_ranks_its_training_window_and_its_indicators_read_nothing_after_it() -> None:
    sweep = parameters(validation={"walk_forward": {"train_bars": 100, "test_bars": 50, "anchored": False}})
    close = np.linspace(10.0, 20.0, 300)
    seen, window = ranked_bars(sweep, close, 2)
    assert len(seen) == 200  # the training window of fold 2 ends at bar 200
    assert window == slice(100, 200)
    assert ranked_bars(parameters(split={"in_sample_fraction": 0.5}), close, None)[1] == slice(0, 150)


def test_the_folds_of_a_walk_forward_rank_the_same_grid_on_different_windows(config: MarketDataConfig) -> None:
    sweep = parameters(validation={"walk_forward": {"train_bars": 250, "test_bars": 100}})
    first = run_chunk(chunk(config, sweep).model_copy(update={"fold": 0}).model_dump_json(), config)
    second = run_chunk(chunk(config, sweep).model_copy(update={"fold": 1}).model_dump_json(), config)
    assert [row["parameters"] for row in first.rows] == [row["parameters"] for row in second.rows]
    assert [row["score"] for row in first.rows] != [row["score"] for row in second.rows]
    assert pq.read_table(pa.BufferReader(second.parquet)).column("fold").to_pylist() == [1] * 6


def stability_of_whole_grid(
    config: MarketDataConfig, sweep: TradingSweepParameters, wanted: list[dict[str, int]], keep: int
) -> tuple[list[dict[str, Any]], np.ndarray, GridStability]:
    """The grid's rows as its one chunk records them, their scores in grid order, and the grid's stability."""
    work = chunk(config, sweep, stop=sweep.strategies[0].combination_count())
    rows = run_chunk(work.model_dump_json(), config).rows
    scores = np.array([np.nan if row["score"] is None else row["score"] for row in rows])
    data = work.data
    stability = grid_stability(
        sweep.model_dump_json(),
        "ACME",
        data.sha256,
        data.periods_per_year,
        "sma_crossover",
        None,
        scores,
        wanted,
        keep=keep,
        config=config,
    )
    return rows, scores, stability


def test_a_grids_stability_gives_each_asked_cell_its_neighbourhood(config: MarketDataConfig) -> None:
    rows, scores, stability = stability_of_whole_grid(config, parameters(), [{"fast": 10, "slow": 50}], keep=2)
    # fast 5/10/20 x slow 50/100: (10, 50) has every other cell of the grid for a neighbour.
    others = [score for row, score in zip(rows, scores, strict=True) if row["parameters"] != {"fast": 10, "slow": 50}]
    assert stability.neighbourhoods == {
        "fast=10,slow=50": {"mean": pytest.approx(np.mean(others)), "worst": min(others), "neighbours": 5}
    }
    assert stability.ranked == []  # the sweep ranks by each cell's own score


def test_ranking_by_neighbourhood_runs_the_chosen_cells_again_as_their_chunk_did(config: MarketDataConfig) -> None:
    sweep = parameters(
        rank_by_neighbourhood=True,
        strategies=[{"type": "sma_crossover", "parameters": {"fast": [5, 10, 15, 20, 25], "slow": [50, 60, 100]}}],
    )
    rows, scores, stability = stability_of_whole_grid(config, sweep, [], keep=3)
    means = [row["neighbourhood"]["mean"] for row in stability.ranked]
    assert len(means) == 3
    assert means == sorted(means, reverse=True)
    found = neighbourhoods(sweep.strategies[0], scores)
    assert found is not None
    assert means[0] == np.nanmax(found.mean)
    by_parameters = {json.dumps(row["parameters"]): row for row in rows}
    for row in stability.ranked:
        chunk_row = by_parameters[json.dumps(row["parameters"])]
        assert (row["score"], row["metrics"]) == (chunk_row["score"], chunk_row["metrics"])
