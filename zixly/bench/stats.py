"""The statistics every benchmark table reports: medians and nearest-rank percentiles of repeated measurements."""

import statistics


def percentile(values: list[float], q: float) -> float:
    """The value at quantile ``q`` (0 to 1) of ``values``, nearest rank; NaN when there is none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def p95(values: list[float]) -> float:
    return percentile(values, 0.95)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
