"""The Faust app of the workers: built by ``create_app``, never at import time."""

from typing import Any

import faust
from faust.types.auth import CredentialsT

from kernel.kafka_security import kafka_ssl_context
from kernel.settings import Settings
from processors import faust_commit_fix, faust_delivery, faust_fetch_wait


def create_app(settings: Settings) -> faust.App:
    faust_commit_fix.install()
    faust_fetch_wait.install()
    faust_delivery.install()
    return faust.App(
        "zixly-processor",
        broker=[f"kafka://{address}" for address in settings.kafka_bootstrap.split(",")],
        broker_credentials=broker_credentials(settings),
        store="memory://",
        # We own the envelope and its codec (schemas.codec); Faust just hands us bytes.
        value_serializer="raw",
        key_serializer="raw",
        topic_partitions=settings.topic_partitions,
        # Faust's own topics (its assignor's) are replicated like the project's.
        topic_replication_factor=settings.topic_replication_factor or min(3, settings.kafka_brokers),
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


def broker_credentials(settings: Settings) -> CredentialsT | None:
    """The same TLS and SASL as every other client of ours (kernel.kafka_security), in Faust's terms."""
    context = kafka_ssl_context(settings) if settings.kafka_uses_tls else None
    if settings.kafka_uses_sasl:
        assert settings.kafka_sasl_password is not None  # the settings refuse SASL without it
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password.get_secret_value(),
            ssl_context=context,
            mechanism=settings.kafka_sasl_mechanism,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def job_events_topic(app: faust.App, settings: Settings) -> Any:
    return app.topic(
        settings.job_events_topic,
        value_type=bytes,
        key_type=bytes,
        partitions=settings.topic_partitions,
        internal=False,
    )
