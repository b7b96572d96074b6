"""The worker's long-lived clients (producer, HTTP client, pools), opened in the worker's event loop."""

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from functools import partial

import httpx

from kernel.kafka import make_producer
from kernel.producer_connection import ProducerConnection
from kernel.publisher import KafkaEventPublisher
from kernel.settings import Settings
from processors.jobs.context import JobContext
from processors.jobs.registry import JobRegistry, default_registry
from processors.runner import JobRunner


class WorkerRuntime:
    """Opened lazily on the first record (the agent's loop is the one to bind to); closed at shutdown."""

    def __init__(self, settings: Settings, registry: JobRegistry | None = None) -> None:
        self.settings = settings
        self.registry = registry or default_registry()
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self._lock = asyncio.Lock()
        self._runner: JobRunner | None = None
        self._closers: list[Callable[[], Awaitable[None]]] = []

    async def runner(self) -> JobRunner:
        if self._runner is None:
            async with self._lock:
                if self._runner is None:
                    self._runner = await self._open()
        return self._runner

    async def _open(self) -> JobRunner:
        settings = self.settings
        kafka = ProducerConnection(lambda: make_producer(settings))
        await kafka.start()
        http = httpx.AsyncClient(limits=httpx.Limits(max_connections=100))
        threads = ThreadPoolExecutor(max_workers=8, thread_name_prefix="blocking-job")
        processes = ProcessPoolExecutor(max_workers=max(1, (os.cpu_count() or 1)))
        self._closers = [kafka.stop, http.aclose]
        self._pools = (threads, processes)
        publisher = KafkaEventPublisher(kafka, settings.job_events_topic, settings.publish_timeout_seconds)
        make_context = partial(
            JobContext, http=http, allowed_hosts=settings.http_allowed_hosts,
            blocking_executor=threads, cpu_executor=processes,
        )  # fmt: skip
        return JobRunner(self.registry, publisher, self.worker_id, make_context)

    async def close(self) -> None:
        for close in self._closers:
            await close()
        for pool in getattr(self, "_pools", ()):
            pool.shutdown(wait=False, cancel_futures=True)
        self._runner = None
