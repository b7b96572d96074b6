"""The receiver's one wiring point: ``create_app`` builds the FastAPI app; its lifespan opens the clients."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from identity.api_tokens import ApiTokens
from identity.audit import SqlAuditTrail
from identity.tenants import TenantDirectory
from kernel.database import make_async_engine
from kernel.environment import checked_settings
from kernel.http_metrics import NO_FASTAPI_TELEMETRY, HttpMetricsMiddleware
from kernel.kafka import make_producer
from kernel.logging import configure_logging, get_logger
from kernel.outbound import policy_from_settings
from kernel.parent_death import die_with_parent, in_a_child_process
from kernel.producer_connection import ProducerConnection
from kernel.publisher import KafkaEventPublisher
from kernel.secret_box import SecretBox
from kernel.settings import Settings, load_settings
from market_data.providers import MarketData
from producers.acceptance import JobAcceptance
from producers.backpressure import BoundedPublisher
from producers.callers import ReadCallers
from producers.errors import install_error_handlers
from producers.grouped_receipts import GroupedReceiptStore
from producers.health import kafka_probe, postgres_probe
from producers.job_status import SqlJobReader
from producers.limits import InFlightQuota, RateLimiter
from producers.routes import health, jobs, webhooks
from producers.services import ReceiverServices
from producers.signatures import WebhookAuthenticator

log = get_logger(__name__)


def create_app(settings: Settings | None = None, services: ReceiverServices | None = None) -> FastAPI:
    """The receiver. Given ``services`` (fakes in unit tests), it uses them instead of opening clients."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if services is not None:
            yield
            return
        kafka = ProducerConnection(lambda: make_producer(settings))
        await kafka.start()
        engine = make_async_engine(settings, pool_size=settings.receiver_database_pool, service="receiver")
        tenant_directory = TenantDirectory(engine, SecretBox.from_text(settings.master_keys.get_secret_value()))
        publisher = BoundedPublisher(
            KafkaEventPublisher(kafka, settings.job_events_topic, settings.publish_timeout_seconds),
            settings.receiver_max_in_flight,
        )
        jobs_reader = SqlJobReader(engine, settings.projector_name, settings.job_events_topic)
        app.state.services = ReceiverServices(
            settings=settings,
            publisher=publisher,
            jobs=jobs_reader,
            market_data=MarketData.from_settings(settings),
            acceptance=JobAcceptance(publisher, GroupedReceiptStore(engine), settings.publish_timeout_seconds),
            authenticator=WebhookAuthenticator(tenant_directory, settings.accepts_unregistered_tenants),
            callers=ReadCallers(ApiTokens(engine), tenant_directory, settings.accepts_unregistered_tenants),
            audit=SqlAuditTrail(engine),
            outbound=policy_from_settings(settings),
            rates=RateLimiter(),
            quota=InFlightQuota(jobs_reader.in_flight),
            probes={"kafka": kafka_probe(kafka), "postgres": postgres_probe(engine)},
        )
        log.info("receiver ready", topic=settings.job_events_topic, kafka=settings.kafka_bootstrap)
        try:
            yield
        finally:
            await kafka.stop()
            await engine.dispose()

    app = FastAPI(
        title="Zixly Pipeline receiver",
        version="0.1.0",
        description="Integrators submit jobs as webhooks; each accepted job is an event in the log.",
        lifespan=lifespan,
        telemetry=NO_FASTAPI_TELEMETRY,
    )
    if services is not None:
        app.state.services = services
    app.add_middleware(HttpMetricsMiddleware)
    install_error_handlers(app)
    for module in (webhooks, jobs, health):
        app.include_router(module.router)
    return app


def create_app_from_env() -> FastAPI:
    """Factory for uvicorn (``--factory``): each worker process reads the environment and logs as JSON."""
    if in_a_child_process():
        # One of several uvicorn workers: its parent, uvicorn's supervisor, may die by SIGKILL.
        die_with_parent()
    settings = checked_settings()
    configure_logging("receiver", settings.log_level, settings.log_format)
    return create_app(settings)
