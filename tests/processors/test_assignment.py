from typing import NamedTuple

from prometheus_client import REGISTRY

from processors.assignment import OwnedPartitions


class TP(NamedTuple):
    topic: str
    partition: int


def assigned_metric(topic: str) -> float | None:
    return REGISTRY.get_sample_value("zixly_worker_assigned_partitions", {"topic": topic})


def test_the_metric_counts_the_partitions_owned_per_topic() -> None:
    owned = OwnedPartitions()
    owned.assigned({TP("test-owned-jobs", 0), TP("test-owned-jobs", 1), TP("test-owned-retries", 0)})
    assert assigned_metric("test-owned-jobs") == 2
    assert assigned_metric("test-owned-retries") == 1


def test_a_topic_whose_partitions_all_went_elsewhere_reads_zero() -> None:
    owned = OwnedPartitions()
    owned.assigned({TP("test-lost-jobs", 0), TP("test-lost-retries", 3)})
    owned.revoked({TP("test-lost-jobs", 0), TP("test-lost-retries", 3)})
    owned.assigned({TP("test-lost-retries", 4)})
    assert assigned_metric("test-lost-jobs") == 0
    assert owned.count("test-lost-retries") == 1


def test_an_incremental_revocation_keeps_the_partitions_not_revoked() -> None:
    owned = OwnedPartitions()
    owned.assigned({TP("test-kept-jobs", n) for n in range(4)})
    owned.revoked({TP("test-kept-jobs", 1)})
    assert assigned_metric("test-kept-jobs") == 3
