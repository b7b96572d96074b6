"""The engine's version: what a sweep records so that a re-run can tell "the same code" from "changed code".

A digest of the engine's own source files and of the two libraries whose arithmetic its results depend on (numpy's
indicators, numba's compiled loops). Any edit to the engine, even a comment, changes it: a re-run then says the
engine changed rather than promise identical results it cannot check.
"""

import functools
import hashlib
from pathlib import Path

import numba
import numpy as np

_ENGINE = Path(__file__).resolve().parent


@functools.cache
def engine_version() -> str:
    digest = hashlib.sha256()
    for source in sorted(_ENGINE.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
    digest.update(f"numpy {np.__version__}, numba {numba.__version__}".encode())
    return f"{digest.hexdigest()[:16]} (numpy {np.__version__}, numba {numba.__version__})"
