import random
import uuid

import numpy as np

from processors.sweeps.collector import add_results, keep_per_cell, planned_state
from processors.sweeps.ranking import add_stats, empty_stats, merge_top, rank_key, robustness
from schemas.events import SweepPlanned, SweepPlannedPayload, SweepResultsRecorded, SweepResultsRecordedPayload
from schemas.sweeps import SweepResultRow

JOB = uuid.uuid4()
ENVELOPE = {"tenant_id": "acme", "job_id": JOB, "correlation_id": "c", "producer": "test"}


def planned(chunks: int = 2) -> SweepPlanned:
    return SweepPlanned(
        **ENVELOPE,
        payload=SweepPlannedPayload(  # type: ignore[arg-type]
            attempt=1, chunk_count=chunks, backtest_count=4, data=[], parameters={"split": None}
        ),
    )


def results(chunk: int, scores: list[float | None]) -> SweepResultsRecorded:
    rows = [
        SweepResultRow(
            ticker="AAPL",
            strategy_type="momentum",
            parameters={
                "window": chunk * 10 + i,  # type: ignore[arg-type]
                "threshold": 0.0,
            },
            score=s,
            metrics={},
        )
        for i, s in enumerate(scores)
    ]
    return SweepResultsRecorded(
        **ENVELOPE,
        payload=SweepResultsRecordedPayload(  # type: ignore[arg-type]
            chunk_index=chunk, chunk_count=2, rows=rows, worker="w", duration_ms=1.0
        ),
    )


def test_a_sweep_completes_when_its_last_chunk_is_in_whatever_the_order() -> None:
    state = planned_state(planned())
    first = add_results(state, results(1, [0.5, 1.5]), keep=3)
    assert first.new
    assert not first.complete
    second = add_results(first.state, results(0, [2.0, None]), keep=3)
    assert second.complete
    assert second.state["rows"] == 4
    assert [row["score"] for row in second.state["top"]["AAPL|momentum"]] == [2.0, 1.5, 0.5]


def test_a_redelivered_chunk_is_not_counted_twice() -> None:
    state = add_results(planned_state(planned()), results(0, [1.0]), keep=3).state
    again = add_results(state, results(0, [1.0]), keep=3)
    assert not again.new
    assert again.state["rows"] == 1


def test_undefined_scores_rank_last_and_ties_break_on_parameters() -> None:
    rows = [
        {"score": None, "parameters": {"a": 1}},
        {"score": 1.0, "parameters": {"a": 3}},
        {"score": 1.0, "parameters": {"a": 2}},
    ]
    assert [r["parameters"]["a"] for r in sorted(rows, key=rank_key)] == [2, 3, 1]
    assert merge_top(rows[:1], rows[1:], keep=2) == [rows[2], rows[1]]


def test_robustness_tells_a_lone_spike_from_a_broad_plateau() -> None:
    spike = {"count": 5, "scored": 5, "positive": 1, "sum": 1.6, "sum_squares": 4.0}
    stats = robustness(spike, best_score=2.0)
    assert stats["positive_share"] == 0.2
    assert stats["best_z"] is not None
    assert stats["best_z"] > 1.5


def test_enough_rows_are_kept_for_the_out_of_sample_candidates() -> None:
    assert keep_per_cell({"split": {"top_n": 7}}, top_cells=3) == 7
    assert keep_per_cell({"split": None}, top_cells=3) == 3


def test_chunks_collected_keep_the_same_top_and_stats_as_ranking_every_row() -> None:
    picker = random.Random(15)
    chunks = [[picker.choice([None, 0.0, 0.5, 1.0, 1.0, picker.random()]) for _ in range(200)] for _ in range(4)]
    state = planned_state(planned(chunks=4))
    for index, scores in enumerate(chunks):
        state = add_results(state, results(index, scores), keep=5).state
    every_row = [
        row.model_dump(mode="json")
        for index, scores in enumerate(chunks)
        for row in results(index, scores).payload.rows
    ]
    assert state["top"]["AAPL|momentum"] == sorted(every_row, key=rank_key)[:5]
    assert state["stats"]["AAPL|momentum"] == add_stats(empty_stats(), [row["score"] for row in every_row])


def test_each_walk_forward_fold_keeps_its_own_best_rows_of_the_same_grid() -> None:
    state = planned_state(planned())
    for chunk, (fold, scores) in enumerate([(0, [2.0, 1.0]), (1, [0.5, 3.0])]):
        event = results(0, scores)
        event = event.model_copy(
            update={"payload": event.payload.model_copy(update={"chunk_index": chunk, "fold": fold})}
        )
        state = add_results(state, event, keep=1).state
    assert [row["parameters"]["window"] for row in state["top"]["AAPL|momentum|0"]] == [0]
    assert [row["parameters"]["window"] for row in state["top"]["AAPL|momentum|1"]] == [1]
    assert "AAPL|momentum" not in state["top"]


def test_every_cells_score_is_kept_at_its_grid_position_for_the_neighbourhoods() -> None:
    sweep = {
        "tickers": ["AAPL"],
        "strategies": [{"type": "momentum", "parameters": {"window": [1, 2, 3, 4, 5], "threshold": [0]}}],
    }
    plan = planned()
    state = planned_state(plan.model_copy(update={"payload": plan.payload.model_copy(update={"parameters": sweep})}))
    for chunk, (first, scores) in enumerate([(3, [0.5, None]), (0, [2.0, 1.0, 3.0])]):
        event = results(chunk, scores)
        payload = event.payload.model_copy(update={"first_combination": first})
        state = add_results(state, event.model_copy(update={"payload": payload}), keep=1).state
    kept = state["scores"]["AAPL|momentum"]
    assert kept[:4].tolist() == [2.0, 1.0, 3.0, 0.5]
    assert np.isnan(kept[4])  # an undefined score
