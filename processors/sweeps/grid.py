"""A sweep's grid, cut into chunks of combinations that any worker can run on its own."""

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from schemas.sweeps import TradingSweepParameters


@dataclass(frozen=True)
class ChunkPlan:
    ticker: str
    strategy_index: int
    start: int
    stop: int
    fold: int | None = None

    @property
    def size(self) -> int:
        return self.stop - self.start


def plan_chunks(parameters: TradingSweepParameters, chunk_size: int, bars: dict[str, int]) -> list[ChunkPlan]:
    """Ticker by ticker, (walk-forward fold by fold,) strategy by strategy, ``chunk_size`` combinations at a time, in
    a fixed order. ``bars`` is each ticker's length, which decides how many folds it has."""
    sizes = [grid.combination_count() for grid in parameters.strategies]
    walk_forward = parameters.walk_forward
    return [
        ChunkPlan(ticker, index, start, min(start + chunk_size, size), fold)
        for ticker in parameters.tickers
        for fold in (range(walk_forward.fold_count(bars[ticker])) if walk_forward else [None])
        for index, size in enumerate(sizes)
        for start in range(0, size, chunk_size)
    ]


def grid_arrays(combinations: list[dict[str, float]]) -> dict[str, NDArray[np.float64]]:
    return {name: np.array([c[name] for c in combinations], dtype=np.float64) for name in combinations[0]}


def in_sample_bars(bars: int, fraction: float | None) -> int:
    """How many leading bars are in sample; all of them without a split."""
    if fraction is None:
        return bars
    return max(2, min(bars - 2, round(bars * fraction)))
