"""The Faust agent: a thin loop that picks JobRequested events off the log and hands them to the runner."""

from collections.abc import Mapping, Sequence
from typing import Any

import faust

from kernel.logging import get_logger
from kernel.settings import Settings
from processors.metrics import RECORDS_SKIPPED
from processors.runtime import WorkerRuntime
from schemas.codec import EVENT_TYPE_HEADER, UndecodableEvent, decode
from schemas.events import JobRequested

log = get_logger(__name__)


def header_value(headers: Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None, name: str) -> str | None:
    if headers is None:
        return None
    items = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in items:
        if key == name:
            return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    return None


def register_agents(app: faust.App, topic: Any, runtime: WorkerRuntime, settings: Settings) -> None:
    @app.agent(topic, concurrency=settings.worker_concurrency, name="zixly.run-requested-jobs")
    async def run_requested_jobs(stream: Any) -> None:
        async for event in stream.events():
            # Lifecycle events share the topic; the header tells them apart without decoding.
            if header_value(event.headers, EVENT_TYPE_HEADER) != JobRequested.TYPE:
                continue
            try:
                request = decode(event.value)
            except UndecodableEvent as exc:
                RECORDS_SKIPPED.labels("undecodable").inc()
                log.error("skipping undecodable record", error=str(exc), offset=event.message.offset,
                          partition=event.message.partition)  # fmt: skip
                continue
            if not isinstance(request, JobRequested):
                RECORDS_SKIPPED.labels("header_mismatch").inc()
                continue
            runner = await runtime.runner()
            await runner.run(request)
