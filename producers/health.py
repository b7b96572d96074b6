"""Readiness probes of the receiver's dependencies."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kernel.producer_connection import ProducerConnection

Probe = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    latency_ms: float
    error: str | None = None


async def run_probe(probe: Probe, timeout: float = 2.0) -> ProbeResult:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(probe(), timeout)
    except Exception as exc:  # a failing dependency is a reported state, not a crash
        return ProbeResult(False, (time.perf_counter() - started) * 1000, f"{type(exc).__name__}: {exc}"[:300])
    return ProbeResult(True, (time.perf_counter() - started) * 1000)


def kafka_probe(connection: ProducerConnection) -> Probe:
    async def probe() -> None:
        producer = connection.producer
        if producer is None:
            raise ConnectionError(f"not connected: {connection.last_error}")
        if not await producer.client.fetch_all_metadata():
            raise ConnectionError("no metadata from any broker")

    return probe


def postgres_probe(engine: AsyncEngine) -> Probe:
    async def probe() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    return probe
