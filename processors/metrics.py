"""The workers' Prometheus metrics, served on their own port for Prometheus to scrape."""

from prometheus_client import Counter, Gauge, Histogram

JOBS_FINISHED = Counter("zixly_jobs_finished_total", "Jobs run to an outcome", ["job_type", "outcome"])
JOBS_RUNNING = Gauge("zixly_jobs_running", "Jobs running in this worker now", ["job_type"])
JOB_DURATION = Histogram(
    "zixly_job_duration_seconds",
    "Time from start to outcome of a job attempt",
    ["job_type"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
CONSUMER_LAG = Gauge(
    "zixly_worker_consumer_lag", "Records behind the log end, per assigned partition", ["topic", "partition"]
)
ASSIGNED_PARTITIONS = Gauge(
    "zixly_worker_assigned_partitions", "Partitions of each topic this worker owns and is ready to run", ["topic"]
)
RECORDS_SKIPPED = Counter("zixly_worker_records_skipped_total", "Records the worker did not run, by reason", ["reason"])
SWEEP_STEPS_SKIPPED = Counter(
    "zixly_sweep_plans_not_followed_total", "Sweep plans read again after a handover whose sweep had already ended"
)
SWEEP_BACKTESTS = Counter("zixly_sweep_backtests_total", "Backtests run by this worker's sweep chunks")
SWEEP_CHUNKS = Counter("zixly_sweep_chunks_total", "Sweep chunks run, by outcome", ["outcome"])
SWEEP_CHUNK_SECONDS = Histogram(
    "zixly_sweep_chunk_seconds",
    "Time to run a chunk: compute, artifact upload and results event",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
SWEEPS_FINISHED = Counter("zixly_sweeps_finished_total", "Sweeps the collector finished, by outcome", ["outcome"])
JOBS_WAITING = Gauge(
    "zixly_worker_jobs_waiting", "Requested jobs read from the log, waiting for a free slot (all tenants)"
)
