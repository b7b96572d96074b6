"""The worker's long-lived clients (producer, HTTP client, pools, object store), opened in the worker's event loop."""

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial

import httpx

from identity.tenant_secrets import TenantSecretStore
from kernel.database import make_async_engine
from kernel.dead_letters import DeadLetterSender
from kernel.kafka import make_producer
from kernel.object_store import ObjectStore
from kernel.outbound import GuardedTransport, OutboundPolicy, policy_from_settings
from kernel.patient_publisher import PatientDeadLetters, PatientPublisher
from kernel.producer_connection import ProducerConnection
from kernel.publisher import KafkaEventPublisher, KafkaRecordSender
from kernel.secret_box import SecretBox
from kernel.settings import Settings
from processors.cancellations import CancelRegistry
from processors.jobs.context import JobContext
from processors.jobs.registry import JobRegistry, default_registry
from processors.jobs.retry_policy import RetryPolicy
from processors.pools import cpu_pool
from processors.retries import KafkaRetryScheduler
from processors.runner import JobRunner
from processors.sweeps.chunks import ChunkWorker
from processors.sweeps.compute import MarketDataConfig
from processors.sweeps.external import ExternalDispatcher
from processors.sweeps.finisher import SweepFinisher
from processors.sweeps.planner import SweepPlanner
from schemas.sweeps import SWEEP_JOB_TYPE


@dataclass(frozen=True)
class WorkerServices:
    runner: JobRunner
    planner: SweepPlanner
    chunks: ChunkWorker
    finisher: SweepFinisher
    publisher: PatientPublisher
    worker_id: str
    dead_letters: PatientDeadLetters
    cancellations: CancelRegistry


def market_data_config(settings: Settings) -> MarketDataConfig:
    return MarketDataConfig(
        files_folder=settings.market_data_folder,
        http_base_url=settings.market_data_url,
        http_timeout_seconds=settings.market_data_timeout_seconds,
        http_attempts=settings.market_data_attempts,
    )


class WorkerRuntime:
    """Opened lazily on the first record (the agent's loop is the one to bind to); closed at shutdown."""

    def __init__(self, settings: Settings, registry: JobRegistry | None = None) -> None:
        self.settings = settings
        self._registry = registry
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self._lock = asyncio.Lock()
        # Filled by the job agent from the event stream, read by running jobs: exists before the clients do.
        self.cancellations = CancelRegistry()
        self._services: WorkerServices | None = None
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self._processes: ProcessPoolExecutor | None = None
        self._events: KafkaEventPublisher | None = None

    async def services(self) -> WorkerServices:
        if self._services is None:
            async with self._lock:
                if self._services is None:
                    self._services = await self._open()
        return self._services

    async def runner(self) -> JobRunner:
        return (await self.services()).runner

    async def _open(self) -> WorkerServices:
        settings = self.settings
        kafka = ProducerConnection(lambda: make_producer(settings))
        await kafka.start()
        # Tenants' calls (http.request) and the operator's (external backtest services) go through the outbound
        # policy, each with its own allow-list: a tenant cannot reach what only the operator configured.
        http = httpx.AsyncClient(
            transport=GuardedTransport(policy_from_settings(settings)), limits=httpx.Limits(max_connections=100)
        )
        services_http = httpx.AsyncClient(
            transport=GuardedTransport(OutboundPolicy.only(*settings.sweep_external_services.values()))
        )
        pool_size = max(1, os.cpu_count() or 1)
        processes = cpu_pool(pool_size)
        for _ in range(pool_size):
            processes.submit(int)  # starts the processes now, so the first chunk does not wait for them
        # Opened now, connected on a job's first secret: a worker whose jobs name none never logs in.
        database = make_async_engine(settings, pool_size=2, service="worker")
        secrets = TenantSecretStore(database, SecretBox.from_text(settings.master_keys.get_secret_value()))
        self._closers = [kafka.stop, http.aclose, services_http.aclose, database.dispose]
        self._processes = processes
        self._events = KafkaEventPublisher(kafka, settings.job_events_topic, settings.publish_timeout_seconds)
        publisher = PatientPublisher(self._events, settings.worker_publish_patience_seconds)
        sender = KafkaRecordSender(kafka, settings.publish_timeout_seconds)
        market_data = market_data_config(settings)
        store = ObjectStore(settings)
        external = ExternalDispatcher(
            services_http,
            settings.sweep_external_services,
            f"{settings.receiver_base_url}/webhook/sweep-callback",
            settings.callback_secret.get_secret_value(),
            timeout_seconds=settings.sweep_external_timeout_seconds,
            attempts=settings.sweep_external_attempts,
        )
        planner = SweepPlanner(
            sender,
            settings.sweep_chunks_topic,
            settings.sweep_chunk_size,
            market_data,
            external,
            top_cells=settings.sweep_top_cells,
        )
        policy = RetryPolicy(
            max_attempts=settings.retry_max_attempts,
            base_delay_seconds=settings.retry_base_delay_seconds,
            max_delay_seconds=settings.retry_max_delay_seconds,
            timeout_seconds=settings.attempt_timeout_seconds,
        )
        registry = self._registry or default_registry({SWEEP_JOB_TYPE: planner}, policy)
        patience = settings.worker_publish_patience_seconds
        cancellations = self.cancellations
        dead_letters = PatientDeadLetters(DeadLetterSender(kafka, settings.dead_letter_topic, self.worker_id), patience)
        make_context = partial(
            JobContext,
            http=http,
            development=settings.development,
            secrets=secrets,
        )
        return WorkerServices(
            cancellations=cancellations,
            runner=JobRunner(
                registry,
                publisher,
                self.worker_id,
                make_context,
                KafkaRetryScheduler(sender, settings.retries_topic, patience),
                dead_letters,
                cancellations,
            ),
            planner=planner,
            dead_letters=dead_letters,
            chunks=ChunkWorker(publisher, store, processes, market_data, self.worker_id),
            finisher=SweepFinisher(store, processes, market_data, settings.sweep_top_cells),
            publisher=publisher,
            worker_id=self.worker_id,
        )

    async def appends_settled(self, patience_seconds: float) -> int:
        """Waits up to ``patience_seconds`` for the events this worker has sent and the broker not yet
        acknowledged; how many are still unanswered."""
        return await self._events.settled(patience_seconds) if self._events is not None else 0

    async def close(self) -> None:
        for close in self._closers:
            await close()
        if self._processes is not None:
            # Idle by now: waiting lets the pool's processes exit before the worker does.
            self._processes.shutdown(wait=True, cancel_futures=True)
        self._services = None
        self._events = None
