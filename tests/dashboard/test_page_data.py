import math

import pytest

from dashboard.page_data import ArtifactRefused, PageData, histogram_percentile
from kernel.settings import Settings


def test_a_percentile_from_the_histogram_is_the_middle_of_its_bucket() -> None:
    # bucket 40: 1024 ms to 1218 ms; bucket 44: 2048 ms to 2435 ms
    buckets = {40: 50, 44: 50}
    assert histogram_percentile(buckets, 0.5) == 2 ** (40.5 / 4)
    assert histogram_percentile(buckets, 0.95) == 2 ** (44.5 / 4)


def test_a_percentile_is_within_a_tenth_of_the_exact_value() -> None:
    durations = [5 + (i * 7919) % 5000 for i in range(10_000)]
    buckets: dict[int, int] = {}
    for duration in durations:
        bucket = math.floor(4 * math.log2(duration))
        buckets[bucket] = buckets.get(bucket, 0) + 1
    exact = sorted(durations)
    for fraction in (0.5, 0.95):
        estimate = histogram_percentile(buckets, fraction)
        assert estimate is not None
        assert abs(estimate / exact[int(fraction * len(exact)) - 1] - 1) < 0.1


def test_no_durations_have_no_percentile() -> None:
    assert histogram_percentile({}, 0.5) is None


@pytest.mark.parametrize(
    "key",
    [
        "tenants/globex/results/part-0.parquet",
        "tenants/acme-evil/x.parquet",
        "tenants/acme/../globex/x.parquet",
        "other/acme/x.parquet",
    ],
)
def test_no_link_is_made_for_an_object_outside_the_jobs_tenant(key: str) -> None:
    data = PageData(Settings(env="development"))
    try:
        with pytest.raises(ArtifactRefused):
            data.artifact_url({"id": "j", "tenant_id": "acme"}, key)
        with pytest.raises(ArtifactRefused):
            data.equity_curve({"id": "j", "tenant_id": "acme", "parameters": {}}, key, "AAPL")
    finally:
        data.dispose()
