"""``zixly projector``: the projector's one wiring point."""

import asyncio
import signal

from prometheus_client import start_http_server

from kernel.kafka import make_consumer
from kernel.logging import configure_logging, get_logger
from kernel.settings import Settings
from projections.postgres_store import PostgresProjectionStore
from projections.projector import Projector
from projections.service import ProjectorService

log = get_logger(__name__)


def build_service(settings: Settings) -> tuple[ProjectorService, PostgresProjectionStore]:
    store = PostgresProjectionStore(settings.database, settings.projector_name)
    consumer = make_consumer(
        settings,
        group_id=f"zixly-projector-{settings.projector_name}",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    service = ProjectorService(consumer, Projector(store), settings.job_events_topic, settings.projector_batch_size)
    return service, store


async def serve(settings: Settings) -> None:
    service, store = build_service(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, service.stop)
    log.info("projector starting", projection=settings.projector_name, topic=settings.job_events_topic)
    try:
        await service.run()
    finally:
        await store.close()
        log.info("projector stopped")


def run_projector(settings: Settings, metrics_port: int | None = None) -> None:
    configure_logging("projector", settings.log_level, settings.log_format)
    port = settings.projector_metrics_port if metrics_port is None else metrics_port
    if port:
        start_http_server(port, addr=settings.metrics_bind_host)
    asyncio.run(serve(settings))
