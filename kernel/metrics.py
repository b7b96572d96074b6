"""Prometheus metrics shared by more than one service, and the exposition that works with several workers."""

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    generate_latest,
    multiprocess,
)
from prometheus_client import REGISTRY as DEFAULT_REGISTRY

EVENTS_PRODUCED = Counter(
    "zixly_events_produced_total", "Events appended to the log and acknowledged by the broker", ["event_type"]
)


def render_metrics() -> tuple[bytes, str]:
    """The exposition body and content type; aggregates all worker processes in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(DEFAULT_REGISTRY), CONTENT_TYPE_LATEST
