"""``/health`` (readiness: Kafka and Postgres), ``/health/live`` and ``/metrics``."""

import asyncio

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from kernel.metrics import render_metrics
from producers.deps import Services
from producers.health import run_probe

router = APIRouter(tags=["operations"])


@router.get("/health", summary="Readiness: 200 when Kafka and Postgres answer, 503 otherwise")
async def health(services: Services) -> JSONResponse:
    names = list(services.probes)
    results = await asyncio.gather(*(run_probe(services.probes[name]) for name in names))
    checks = {
        name: {"ok": result.ok, "latency_ms": round(result.latency_ms, 2), "error": result.error}
        for name, result in zip(names, results, strict=True)
    }
    ready = all(result.ok for result in results)
    body = {"status": "ok" if ready else "degraded", "live": True, "ready": ready, "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/health/live", summary="Liveness: the process answers")
async def live() -> dict[str, bool]:
    return {"live": True}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics() -> Response:
    body, content_type = render_metrics()
    return Response(body, media_type=content_type)
