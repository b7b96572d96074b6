"""The Faust app of the workers: built by ``create_app``, never at import time."""

from typing import Any

import faust

from kernel.settings import Settings
from processors import faust_commit_fix


def create_app(settings: Settings) -> faust.App:
    faust_commit_fix.install()
    return faust.App(
        "zixly-processor",
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        # We own the envelope and its codec (schemas.codec); Faust just hands us bytes.
        value_serializer="raw",
        key_serializer="raw",
        topic_partitions=settings.topic_partitions,
        # exactly_once has open duplicate bugs in faust-streaming; handlers and projector are idempotent instead.
        processing_guarantee="at_least_once",
        producer_acks=-1,
        broker_session_timeout=10,
        broker_heartbeat_interval=1,
        broker_commit_every=100,
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
        web_enabled=False,
    )


def job_events_topic(app: faust.App, settings: Settings) -> Any:
    return app.topic(
        settings.job_events_topic,
        value_type=bytes,
        key_type=bytes,
        partitions=settings.topic_partitions,
        internal=False,
    )
