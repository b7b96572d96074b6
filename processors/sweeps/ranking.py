"""Keeping the best rows of a sweep as chunks arrive, and the statistics that say how robust the best one is.

Every ranking metric is "higher is better" (drawdowns are negative fractions); an undefined score ranks last.
"""

import heapq
import math
from collections.abc import Sequence
from typing import Any

from schemas.sweeps import parameters_key

Row = dict[str, Any]


def rank_key(row: Row) -> tuple[bool, float, str]:
    """Sorts best first; ties go to the smaller parameters' text, so the order never depends on chunk arrival."""
    return (*_score_key(row.get("score")), parameters_key(row["parameters"]))


def _score_key(score: float | None) -> tuple[bool, float]:
    return (score is None, -(score if score is not None else 0.0))


def merge_top(kept: list[Row], new: list[Row], keep: int) -> list[Row]:
    return sorted([*kept, *new], key=rank_key)[:keep]


def contenders(scores: Sequence[float | None], keep: int) -> list[int]:
    """Indexes of the rows that may be among the best ``keep`` by score alone, ties included.

    Ranking only these in full (the parameters' text breaks ties) gives the same top as ranking every row: a chunk
    of 1,000 rows is turned into dicts and sorted by text for a handful instead of all of them (the collector spent
    a fifth of the worker's CPU there in ``zixly bench sweep-e2e``).
    """
    if len(scores) <= keep:
        return list(range(len(scores)))
    keys = [_score_key(score) for score in scores]
    worst_kept = heapq.nsmallest(keep, keys)[-1]
    return [index for index, key in enumerate(keys) if key <= worst_kept]


def empty_stats() -> dict[str, float]:
    return {"count": 0, "scored": 0, "positive": 0, "sum": 0.0, "sum_squares": 0.0}


def add_stats(stats: dict[str, float], scores: Sequence[float | None]) -> dict[str, float]:
    out = dict(stats)
    for score in scores:
        out["count"] += 1
        if score is None:
            continue
        out["scored"] += 1
        out["positive"] += score > 0
        out["sum"] += score
        out["sum_squares"] += score * score
    return out


def robustness(stats: dict[str, float], best_score: float | None) -> dict[str, float | int | None]:
    """How the best cell stands against its grid: a lone spike in a field of losers is not a robust result."""
    scored = int(stats["scored"])
    mean = stats["sum"] / scored if scored else None
    variance = (stats["sum_squares"] / scored - mean * mean) if scored and mean is not None else None
    std = math.sqrt(max(variance, 0.0)) if variance is not None else None
    return {
        "combinations": int(stats["count"]),
        "scored": scored,
        "positive_share": stats["positive"] / scored if scored else None,
        "mean_score": mean,
        "score_std": std,
        "best_z": (best_score - mean) / std if best_score is not None and mean is not None and std else None,
    }
