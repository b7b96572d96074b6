"""Turning indicator values into target positions (+1 long, 0 flat, -1 short), one row per parameter combination.

A position at bar t uses only data up to bar t's close. Two shapes of rule exist: a *regime* (long while fast > slow)
and a *state machine* (enter on one signal, stay until the opposite one), which needs a forward fill.
"""

import numpy as np
from numpy.typing import NDArray

Positions = NDArray[np.int8]


def regime(above: NDArray[np.bool_], below: NDArray[np.bool_], *, long_short: bool) -> Positions:
    """Long while ``above``; short while ``below`` when shorting is allowed, else flat."""
    positions = above.astype(np.int8)
    if long_short:
        positions -= below.astype(np.int8)
    return positions


def latch(go_long: NDArray[np.bool_], go_short: NDArray[np.bool_], *, long_short: bool) -> Positions:
    """Holds the side of the most recent signal: ``go_long`` enters long, ``go_short`` exits (or reverses to short).

    A bar with both signals keeps the previous state; no position is taken before the first signal.
    """
    rows, n = go_long.shape
    signal = go_long.astype(np.int8) - go_short.astype(np.int8)
    bars = np.broadcast_to(np.arange(1, n + 1, dtype=np.int32), (rows, n))
    last = np.where(signal != 0, bars, 0)
    np.maximum.accumulate(last, axis=1, out=last)
    # Column 0 of the padded signal is "no signal yet" (flat).
    padded = np.concatenate((np.zeros((rows, 1), dtype=np.int8), signal), axis=1)
    held = np.take_along_axis(padded, last, axis=1)
    if not long_short:
        np.maximum(held, 0, out=held)
    return held
