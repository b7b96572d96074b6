"""``zixly projector``: the projector's one wiring point."""

import asyncio
import signal
import time

from kernel.consumer_loop import ConsumerLoop
from kernel.kafka import make_consumer
from kernel.listening import serve_metrics
from kernel.log_health import LogHealth
from kernel.logging import configure_logging, get_logger
from kernel.settings import Settings
from kernel.topics import project_topics
from projections.postgres_store import PostgresProjectionStore
from projections.projector import Projector
from projections.replay import Replay, ReplayProgress
from projections.service import projector_loop
from projections.versions import record_versions_if_empty, stale_projections

log = get_logger(__name__)


def build_service(settings: Settings) -> tuple[ConsumerLoop, PostgresProjectionStore]:
    store = PostgresProjectionStore(settings.database, settings.projector_name)
    consumer = make_consumer(
        settings,
        group_id=f"zixly-projector-{settings.projector_name}",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    service = projector_loop(consumer, Projector(store), settings.job_events_topic, settings.projector_batch_size)
    return service, store


class ProjectionVersionMismatch(SystemExit):
    """Tables built by another version of a projection, and a configuration that says not to rebuild them."""


async def ensure_current_versions(settings: Settings) -> None:
    """Rebuilds (in the shadow, swapped in when done) any projection whose tables another version built.

    Readers keep the old tables meanwhile. With ``ZIXLY_PROJECTOR_ON_VERSION_CHANGE=refuse`` the projector stops
    instead, naming the projections and the command that rebuilds them.
    """
    stale = await stale_projections(settings)
    if not stale:
        return
    if await record_versions_if_empty(settings):
        log.info("projection versions recorded on an empty read model", projections=[p.name for p, _ in stale])
        return
    described = ", ".join(f"{p.name} (tables built by v{stored}, this code is v{p.version})" for p, stored in stale)
    if settings.projector_on_version_change == "refuse":
        raise ProjectionVersionMismatch(
            f"projection versions differ: {described}. Run `zixly replay {' '.join(p.name for p, _ in stale)}`, "
            "or set ZIXLY_PROJECTOR_ON_VERSION_CHANGE=rebuild to let the projector rebuild them"
        )
    log.warning("rebuilding projections built by another version", projections=described)
    last_logged = [0.0]

    def report(progress: ReplayProgress) -> None:
        if time.monotonic() - last_logged[0] > 5 or progress.done == progress.total:
            last_logged[0] = time.monotonic()
            log.info(
                "rebuilding",
                phase=progress.phase,
                events=progress.done,
                of=progress.total,
                events_per_second=round(progress.events_per_second),
            )

    # Another projector of the same group may be rebuilding already: wait for it, then see whether it is done.
    replay = Replay(settings, [p.name for p, _ in stale], progress=report)
    result = await replay.run(wait=True, force=True, only_if_stale=True)
    log.info(
        "projections rebuilt", projections=result.projections, events=result.events, seconds=round(result.seconds, 1)
    )


async def serve(settings: Settings) -> None:
    await ensure_current_versions(settings)
    service, store = build_service(settings)
    stopping = asyncio.Event()

    def stop() -> None:
        stopping.set()
        service.stop()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    log.info("projector starting", projection=settings.projector_name, topic=settings.job_events_topic)
    log_health = LogHealth(settings, [topic.name for topic in project_topics(settings)])
    watching = asyncio.create_task(log_health.watch(settings.log_health_seconds, stopping))
    try:
        await service.run()
    finally:
        stopping.set()
        await watching
        await store.close()
        log.info("projector stopped")


def run_projector(settings: Settings, metrics_port: int | None = None) -> None:
    configure_logging("projector", settings.log_level, settings.log_format)
    serve_metrics(
        settings, "projector-metrics", settings.projector_metrics_port if metrics_port is None else metrics_port
    )
    asyncio.run(serve(settings))
