"""The dashboard's server: the read-only API beside the pages (health, sync status, time travel, the job routes),
the login routes, and, in front of them all, authentication.

Everything here reads projections; nothing triggers, cancels or retries a job.
"""

import dataclasses
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from dashboard import login_routes
from dashboard.authentication import AuthenticationMiddleware, Authenticator
from dashboard.authorization import scope_of
from dashboard.job_queries import TIMELINE_COLUMNS
from dashboard.live_updates import JobChangeListener
from dashboard.login_throttle import AccountThrottle, ClientThrottle
from dashboard.oidc import OidcProvider
from dashboard.pipelines_api import Reader
from dashboard.pipelines_api import router as pipelines_router
from dashboard.route_support import NOT_FOUND, IsoTime, bad_query, engine_of
from dashboard.sessions import CookieSigner, SessionStore
from dashboard.users import UserDirectory
from identity.api_tokens import ApiTokens
from kernel.database import TenantScope, make_async_engine, make_engine, scoped
from kernel.http_metrics import NO_FASTAPI_TELEMETRY
from kernel.settings import Settings
from read_model.projection_lag import projection_lag
from read_model.time_travel import AsOf, event_from_timeline, fold_job, parse_as_of
from schemas.read_model import job_events, pipeline_jobs


def _as_of(as_of: str | None) -> AsOf:
    try:
        return parse_as_of(as_of)
    except ValueError as exc:
        raise bad_query("as_of", str(exc)) from exc


async def _job_as_of(
    engine: AsyncEngine, scope: TenantScope, job_id: uuid.UUID, moment: AsOf, tenant_id: str | None
) -> dict[str, Any]:
    query = select(*TIMELINE_COLUMNS).where(job_events.c.job_id == job_id).order_by(job_events.c.log_offset)
    if tenant_id is not None:
        query = query.where(job_events.c.tenant_id == tenant_id)
    async with scoped(engine, scope) as connection:
        rows = (await connection.execute(query)).mappings().all()
    if not rows:
        raise HTTPException(404, detail=f"no job {job_id}" + (f" for tenant {tenant_id!r}" if tenant_id else ""))
    history = [(event_from_timeline(dict(row)), row["log_partition"], row["log_offset"]) for row in rows]
    state = fold_job(history, moment)
    return {
        "job_id": str(job_id),
        "as_of": str(moment),
        "state": dataclasses.asdict(state) if state is not None else None,
        "events": [
            {
                "partition": p,
                "offset": o,
                "event_type": e.event_type,
                "occurred_at": e.occurred_at,
                "included": moment.includes(e, o),
            }
            for e, p, o in history
        ],
    }


def create_api(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_async_engine(settings, pool_size=4, service="dashboard")
        sync_engine = make_engine(settings, pool_size=2, service="dashboard")
        app.state.settings = settings
        app.state.engine = engine
        app.state.authenticator = Authenticator(
            sessions=SessionStore(
                engine, timedelta(minutes=settings.session_idle_minutes), timedelta(hours=settings.session_max_hours)
            ),
            signer=CookieSigner(settings.session_keys.get_secret_value()),
            tokens=ApiTokens(engine),
            oidc=OidcProvider(settings) if settings.oidc_issuer else None,
        )
        app.state.users = UserDirectory(sync_engine)
        app.state.account_throttle = AccountThrottle(
            sync_engine, settings.login_max_failures, timedelta(minutes=settings.login_lockout_minutes)
        )
        app.state.client_throttle = ClientThrottle()
        app.state.listener = JobChangeListener(settings.service_database("dashboard"))
        app.state.listener.start()
        yield
        await app.state.listener.stop()
        await engine.dispose()
        sync_engine.dispose()

    api = FastAPI(
        title="Zixly Pipeline read-only API",
        lifespan=lifespan,
        description="Reads the projections (sync status, time travel); never changes a job. Every route "
        "but /api/health needs a login session or `Authorization: Bearer` (an API token, or a JWT of the "
        "configured OIDC provider).",
        telemetry=NO_FASTAPI_TELEMETRY,
    )
    api.add_middleware(AuthenticationMiddleware)
    api.include_router(login_routes.router)

    @api.get("/api/health", summary="Whether the read model answers")
    async def health(request: Request) -> dict[str, str]:
        try:
            async with engine_of(request).connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:  # any failure means "not healthy", with the reason
            raise HTTPException(503, detail=f"postgres: {exc!r}"[:300]) from exc
        return {"status": "ok"}

    @api.get("/api/sync-status", summary="The read model's lag and freshness per partition")
    async def sync_status(_: Reader) -> dict[str, object]:
        return (await projection_lag(settings, settings.service_database("dashboard"))).as_json()

    @api.get(
        "/api/time-travel/jobs/{job_id}",
        summary="A job's state as of an offset or a time, folded from its events",
        responses=NOT_FOUND,
    )
    async def job_as_of(
        request: Request,
        caller: Reader,
        job_id: uuid.UUID,
        as_of: Annotated[str | None, Query(description="an offset (a whole number) or an ISO 8601 time")] = None,
        tenant_id: Annotated[str | None, Query(max_length=64)] = None,
    ) -> dict[str, Any]:
        return await _job_as_of(engine_of(request), scope_of(caller), job_id, _as_of(as_of), tenant_id)

    @api.get("/api/time-travel/jobs", summary="The job list as it stood at a moment")
    async def jobs_as_of(
        request: Request,
        caller: Reader,
        as_of: Annotated[IsoTime, Query(description="an ISO 8601 time (offsets are per partition: use a time)")],
        tenant_id: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> dict[str, Any]:
        moment = _as_of(as_of.isoformat())
        assert moment.moment is not None
        query = (
            select(pipeline_jobs.c.id)
            .where(pipeline_jobs.c.created_at <= moment.moment)
            .order_by(pipeline_jobs.c.created_at.desc())
            .limit(limit)
        )
        if tenant_id is not None:
            query = query.where(pipeline_jobs.c.tenant_id == tenant_id)
        scope = scope_of(caller)
        async with scoped(engine_of(request), scope) as connection:
            ids = (await connection.execute(query)).scalars().all()
        states = [(await _job_as_of(engine_of(request), scope, job_id, moment, tenant_id))["state"] for job_id in ids]
        return {"as_of": str(moment), "jobs": [state for state in states if state is not None]}

    api.include_router(pipelines_router)
    return api
