"""``zixly notifier``: the notifier's one wiring point."""

import asyncio
import signal

import httpx

from kernel.database import make_async_engine
from kernel.kafka import make_consumer, make_producer
from kernel.listening import serve_metrics
from kernel.logging import configure_logging, get_logger
from kernel.outbound import GuardedTransport, internal_hosts
from kernel.patient_publisher import PatientPublisher
from kernel.producer_connection import ProducerConnection
from kernel.publisher import KafkaEventPublisher
from kernel.secret_box import SecretBox
from kernel.settings import Settings
from notifier.channels import Channels, SmtpRelay
from notifier.directory import SqlJobDirectory
from notifier.service import Notifier, notifier_loop
from notifier.targets import slack_policy

log = get_logger(__name__)
GROUP = "zixly-notifier"


def smtp_relay(settings: Settings) -> SmtpRelay:
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    return SmtpRelay(
        settings.smtp_host,
        settings.smtp_port,
        settings.smtp_sender,
        settings.smtp_security,
        settings.smtp_ca_file,
        settings.smtp_username,
        password,
    )


async def serve(settings: Settings) -> None:
    # Connections kept, and jobs past them wait for one: with overflow, the jobs notified at once past the pool
    # opened and closed a connection each (18 % of the notifier's time at 200 jobs/s).
    engine = make_async_engine(settings, pool_size=min(settings.notifier_concurrency, 16), max_overflow=0)
    kafka = ProducerConnection(lambda: make_producer(settings))
    await kafka.start()
    publisher = PatientPublisher(
        KafkaEventPublisher(kafka, settings.job_events_topic, settings.publish_timeout_seconds),
        settings.worker_publish_patience_seconds,
    )
    slack = GuardedTransport(slack_policy(internal_hosts(settings.outbound_internal_hosts)))
    async with httpx.AsyncClient(transport=slack) as http:
        channels = Channels(http, smtp_relay(settings), settings.notification_timeout_seconds)
        box = SecretBox.from_text(settings.master_keys.get_secret_value())
        notifier = Notifier(SqlJobDirectory(engine, box), channels, publisher, settings.notification_attempts, 10.0)

        async def learn(partitions: list[int]) -> int:
            return await notifier.delivered.learn(settings, GROUP, settings.job_events_topic, partitions)

        service = notifier_loop(
            make_consumer(settings, group_id=GROUP),
            notifier,
            settings.job_events_topic,
            learn,
            concurrency=settings.notifier_concurrency,
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, service.stop)
        log.info(
            "notifier starting", smtp=f"{settings.smtp_host}:{settings.smtp_port}", smtp_security=settings.smtp_security
        )
        try:
            await service.run()
        finally:
            await kafka.stop()
            await engine.dispose()


def run_notifier(settings: Settings, metrics_port: int | None = None) -> None:
    configure_logging("notifier", settings.log_level, settings.log_format)
    serve_metrics(
        settings, "notifier-metrics", settings.notifier_metrics_port if metrics_port is None else metrics_port
    )
    asyncio.run(serve(settings))
