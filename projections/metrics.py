"""The projector's Prometheus metrics, served on its own port."""

from prometheus_client import Counter, Gauge, Histogram

EVENTS_APPLIED = Counter("zixly_projector_events_applied_total", "Events applied to the read model", ["event_type"])
RECORDS_SKIPPED = Counter("zixly_projector_records_skipped_total", "Records not applied, by reason", ["reason"])
BATCH_SIZE = Histogram(
    "zixly_projector_batch_records",
    "Records per committed batch",
    buckets=(1, 5, 10, 50, 100, 500, 1000, 5000, 10000, 50000),
)
BATCH_SECONDS = Histogram(
    "zixly_projector_batch_seconds",
    "Time to apply and commit one batch",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
LAG = Gauge("zixly_projector_lag", "Log end offset minus the projection's checkpoint", ["topic", "partition"])
CHECKPOINT = Gauge("zixly_projector_checkpoint", "Next offset to apply", ["topic", "partition"])
LAST_EVENT_TIME = Gauge("zixly_projector_last_event_timestamp_seconds", "occurred_at of the last applied event")
STORE_RETRIES = Counter("zixly_projector_store_retries_total", "Batches retried after a database error")
