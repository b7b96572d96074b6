"""Parameter stability: how a cell's neighbours in its grid scored, so that a lone spike is told apart from a plateau.

A cell's neighbours are the cells one step away on any of its axes, diagonals included (up to 3^d - 1 of them in a
grid of d parameters), that keep the strategy's ordering rules; a step is to the next value given for the axis.
The grid is laid out as its full product, the combinations that break a rule left empty, so that every cell's
neighbourhood is a handful of shifted slices of one array rather than a lookup per cell.
"""

import itertools
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from schemas.strategies import STRATEGIES
from schemas.sweeps import StrategyGrid

# The product of a grid's axes, laid out densely, is at most this many cells (8 bytes each, a few arrays of them):
# a grid whose ordering rules leave a small part of a huge product is left without neighbourhoods.
MAX_PRODUCT = 20_000_000


@dataclass(frozen=True)
class Layout:
    """A grid laid out as the full product of its axes: per combination, in grid order, its flat index there."""

    grid: StrategyGrid
    axes: dict[str, list[float]]
    shape: tuple[int, ...]
    flat: NDArray[np.intp]

    def index_of(self, parameters: dict[str, float]) -> int | None:
        """A combination's place in the grid's order; None when it is not one of the grid's."""
        try:
            position = tuple(self.axes[name].index(parameters[name]) for name in self.axes)
        except (KeyError, ValueError):
            return None
        product_index = int(np.ravel_multi_index(position, self.shape))
        index = int(np.searchsorted(self.flat, product_index))
        return index if index < len(self.flat) and self.flat[index] == product_index else None

    def parameters_at(self, index: int) -> dict[str, int | float]:
        """The combination at a place in the grid's order, as ``StrategyGrid.combinations`` gives it."""
        position = np.unravel_index(int(self.flat[index]), self.shape)
        integer = {p.name for p in STRATEGIES[self.grid.type].parameters if p.integer}
        return {
            name: int(self.axes[name][p]) if name in integer else self.axes[name][p]
            for name, p in zip(self.axes, position, strict=True)
        }


@dataclass(frozen=True)
class Neighbourhoods:
    """Per combination of the grid, in its order: its neighbours' mean and worst score, and how many neighbours
    with a score it has. NaN where it has none."""

    layout: Layout
    mean: NDArray[np.float64]
    worst: NDArray[np.float64]
    count: NDArray[np.int64]

    def of(self, index: int) -> dict[str, float | int | None]:
        return {
            "mean": _finite(self.mean[index]),
            "worst": _finite(self.worst[index]),
            "neighbours": int(self.count[index]),
        }


def product_layout(grid: StrategyGrid) -> Layout | None:
    """The grid laid out in the full product of its axes; None when the product is too large to lay out."""
    axes = grid.axes()
    shape = tuple(len(values) for values in axes.values())
    if math.prod(shape) > MAX_PRODUCT:
        return None
    names = list(axes)
    coordinates = np.indices(shape).reshape(len(shape), -1)
    valid = np.ones(coordinates.shape[1], dtype=bool)
    values = {name: np.asarray(axes[name], dtype=np.float64)[coordinates[i]] for i, name in enumerate(names)}
    for lower, upper in STRATEGIES[grid.type].less_than:
        valid &= values[lower] < values[upper]
    return Layout(grid, axes, shape, np.flatnonzero(valid))


def neighbourhoods(grid: StrategyGrid, scores: NDArray[np.float64]) -> Neighbourhoods | None:
    """``scores`` per combination in grid order (NaN for an undefined or missing score)."""
    layout = product_layout(grid)
    if layout is None:
        return None
    shape, flat = layout.shape, layout.flat
    if len(flat) != len(scores):
        raise ValueError(f"{len(scores)} scores for a grid of {len(flat)} combinations")
    dense = np.full(math.prod(shape), np.nan)
    dense[flat] = scores
    dense = dense.reshape(shape)
    total = np.zeros(shape)
    count = np.zeros(shape, dtype=np.int64)
    worst = np.full(shape, np.inf)
    for step in itertools.product((-1, 0, 1), repeat=len(shape)):
        if not any(step):
            continue
        # For each cell, the value of its neighbour at ``step``: the target's slice reads the source shifted by it.
        target = tuple(slice(max(0, -s), size - max(0, s)) for s, size in zip(step, shape, strict=True))
        source = tuple(slice(max(0, s), size - max(0, -s)) for s, size in zip(step, shape, strict=True))
        neighbour = dense[source]
        scored = ~np.isnan(neighbour)
        total[target] += np.where(scored, neighbour, 0.0)
        count[target] += scored
        worst[target] = np.where(scored, np.minimum(worst[target], neighbour), worst[target])
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    worst = np.where(count > 0, worst, np.nan)
    return Neighbourhoods(layout, mean.reshape(-1)[flat], worst.reshape(-1)[flat], count.reshape(-1)[flat])


def _finite(value: float) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None
