"""The projections this service maintains: their tables, and the version of the code that folds them.

Bump a projection's version whenever its output for the same log changes (a new column, a fixed fold, a new
upcaster); a projector that finds tables built by another version rebuilds them in the shadow schema.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Projection:
    name: str
    version: int
    tables: tuple[str, ...]
    about: str


# The hourly rollups came with migration 0008, which fills them from pipeline_jobs exactly as a replay would: the
# version stays 2, since no table an earlier version built would be rebuilt any differently.
JOBS = Projection(
    "jobs",
    2,
    ("pipeline_jobs", "job_events", "job_counts_hourly", "job_durations_hourly"),
    "each job's current state, its timeline of events, and hourly rollups of both for the overview (v2: the worker "
    "of the latest attempt, from JobStarted v2)",
)
# The fold column came with migration 0012, which gives every row fold 0 exactly as a replay of the same log would:
# the version stays 1, and an upgrade does not rebuild a table of millions of rows to the same content.
SWEEP_RESULTS = Projection(
    "sweep_results", 1, ("trading_sweep_results",), "one row per backtest of every sweep and walk-forward fold"
)

PROJECTIONS: dict[str, Projection] = {p.name: p for p in (JOBS, SWEEP_RESULTS)}


def select(names: list[str] | None) -> list[Projection]:
    """The named projections (all of them for none); an unknown name is an error that lists the known ones."""
    if not names:
        return list(PROJECTIONS.values())
    unknown = [name for name in names if name not in PROJECTIONS]
    if unknown:
        raise ValueError(f"unknown projection(s) {', '.join(unknown)}; known: {', '.join(PROJECTIONS)}")
    return [PROJECTIONS[name] for name in dict.fromkeys(names)]
