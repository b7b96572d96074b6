import math

from zixly.bench.stats import median, p95, percentile


def test_a_percentile_is_the_nearest_ranked_measurement() -> None:
    values = [float(n) for n in range(1, 101)]  # 1 … 100, given in any order
    shuffled = values[::2] + values[1::2]
    assert percentile(shuffled, 0.0) == 1.0
    assert percentile(shuffled, 0.5) == 51.0
    assert percentile(shuffled, 0.99) == 99.0
    assert percentile(shuffled, 1.0) == 100.0
    assert p95(shuffled) == 95.0


def test_no_measurements_have_no_percentile_and_no_median() -> None:
    assert math.isnan(percentile([], 0.5))
    assert math.isnan(median([]))
    assert median([3.0, 1.0, 2.0]) == 2.0
