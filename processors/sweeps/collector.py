"""Collecting a sweep's chunks into its outcome.

The state of each running sweep lives in a Faust table keyed by job id, on the job's own partition of the event
stream, so it survives restarts (the table's changelog) and moves with the partition when workers come and go.
The transitions below are plain functions over that state; ``SweepFinisher`` does the I/O at the end.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from processors.sweeps.ranking import add_stats, contenders, empty_stats, merge_top
from schemas.events import SweepDispatched, SweepPlanned, SweepResultsRecorded
from schemas.sweeps import SweepResultRow, TradingSweepParameters

State = dict[str, Any]


def cell_key(ticker: str, strategy_type: str, fold: int | None = None) -> str:
    """A grid's key in the fold: one per ticker and strategy, and per walk-forward fold when there are folds."""
    return f"{ticker}|{strategy_type}" if fold is None else f"{ticker}|{strategy_type}|{fold}"


def keep_per_cell(parameters: dict[str, Any], top_cells: int) -> int:
    """How many rows per (ticker, strategy) to keep: enough for the out-of-sample candidates and the best cells."""
    split = parameters.get("split")
    return max(top_cells, split["top_n"] if split else 0, 1)


def planned_state(event: SweepPlanned) -> State:
    return _initial_state(event, event.payload.chunk_count)


def dispatched_state(event: SweepDispatched) -> State:
    """An external sweep: the service's callback is its results, collected like chunks (as many as it sends)."""
    return {**_initial_state(event, 1), "external_reference": event.payload.external_reference}


def _initial_state(event: SweepPlanned | SweepDispatched, chunk_count: int) -> State:
    payload = event.payload
    return {
        "attempt": payload.attempt,
        "chunk_count": chunk_count,
        "backtest_count": payload.backtest_count,
        "data": [fingerprint.model_dump(mode="json") for fingerprint in payload.data],
        "parameters": payload.parameters,
        "planned_event_id": str(event.event_id),
        "planned_at": event.occurred_at.isoformat(),
        "done": [],
        "parts": {},
        "top": {},
        "stats": {},
        # Every cell's score by its grid position, per ticker and strategy (and fold), for the neighbourhoods of
        # the best ones at the end: arrays filled in place as chunks arrive (a million scores are 8 MB).
        "scores": {},
        "rows": 0,
    }


@dataclass
class Collected:
    state: State
    new: bool
    """False for a chunk already counted (a redelivery): nothing to report."""
    complete: bool = field(default=False)


def add_results(state: State, event: SweepResultsRecorded, keep: int) -> Collected:
    payload = event.payload
    if payload.chunk_index in state["done"]:
        return Collected(state, new=False)
    if "external_reference" in state:
        # An external service's results come in as many parts as it sent; the plan could not know how many.
        state = {**state, "chunk_count": payload.chunk_count}
    by_cell: dict[str, list[SweepResultRow]] = {}
    for row in payload.rows:
        by_cell.setdefault(cell_key(row.ticker, row.strategy_type.value, payload.fold), []).append(row)
    top = dict(state["top"])
    stats = dict(state["stats"])
    grid_scores = dict(state["scores"])
    for key, cell_rows in by_cell.items():
        scores = [row.score for row in cell_rows]
        if payload.first_combination is not None:
            if "grid_sizes" not in state:  # once per sweep: counting a grid is arithmetic on its axes
                parameters = TradingSweepParameters.model_validate(state["parameters"])
                state = {**state, "grid_sizes": {g.type.value: g.combination_count() for g in parameters.strategies}}
            if key not in grid_scores:
                grid_scores[key] = np.full(state["grid_sizes"][cell_rows[0].strategy_type.value], np.nan)
            first = payload.first_combination
            grid_scores[key][first : first + len(scores)] = [np.nan if score is None else score for score in scores]
        candidates = [cell_rows[index].model_dump(mode="json") for index in contenders(scores, keep)]
        top[key] = merge_top(top.get(key, []), candidates, keep)
        stats[key] = add_stats(stats.get(key, empty_stats()), scores)
    done = sorted([*state["done"], payload.chunk_index])
    parts = dict(state["parts"])
    if payload.artifact_key:
        parts[str(payload.chunk_index)] = payload.artifact_key
    new_state = {
        **state,
        "done": done,
        "top": top,
        "stats": stats,
        "scores": grid_scores,
        "parts": parts,
        "rows": state["rows"] + len(payload.rows),
    }
    return Collected(new_state, new=True, complete=len(done) >= state["chunk_count"])


def planned_at(state: State) -> datetime:
    return datetime.fromisoformat(state["planned_at"])
