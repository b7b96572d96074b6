"""Handing a sweep to a tenant's external backtest service, which calls ``/webhook/sweep-callback`` later."""

import httpx
from pydantic import ValidationError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential, wait_random

from identity.callback_tokens import callback_token
from kernel.logging import get_logger
from processors.jobs.context import JobContext, JobError
from schemas.sweeps import DataFingerprint, ExternalSweepAccepted, ExternalSweepRequest, TradingSweepParameters

log = get_logger(__name__)


class _Retryable(Exception):
    pass


class ExternalDispatcher:
    def __init__(
        self,
        http: httpx.AsyncClient,
        services: dict[str, str],
        callback_url: str,
        secret: str,
        *,
        timeout_seconds: float,
        attempts: int,
    ) -> None:
        self._http = http
        self._services = services
        self._callback_url = callback_url
        self._secret = secret
        self._timeout = timeout_seconds
        self._attempts = attempts

    def service_for(self, tenant_id: str) -> str:
        url = self._services.get(tenant_id)
        if url is None:
            raise JobError(f"no external backtest service is configured for tenant {tenant_id!r}", retryable=False)
        return url

    async def dispatch(
        self, parameters: TradingSweepParameters, data: list[DataFingerprint], context: JobContext
    ) -> tuple[str, str]:
        """POSTs the sweep; returns (service URL, the service's reference). Raises JobError when it will not take it."""
        url = self.service_for(context.tenant_id)
        started = context.started
        body = ExternalSweepRequest(
            job_id=started.job_id,
            tenant_id=started.tenant_id,
            callback_url=f"{self._callback_url}?job_id={started.job_id}",
            callback_token=callback_token(self._secret, started.tenant_id, started.job_id),
            sweep=parameters,
            data=data,
        )
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self._attempts),
                wait=wait_exponential(multiplier=0.2, max=5) + wait_random(0, 0.2),
                retry=retry_if_exception(lambda e: isinstance(e, _Retryable)),
                reraise=True,
            ):
                with attempt:
                    response = await self._post(self._http, url, body)
        except _Retryable as exc:
            raise JobError(f"external backtest service at {url} is unavailable: {exc}", retryable=True) from exc
        if not response.is_success:
            raise JobError(
                f"external backtest service at {url} refused the sweep: HTTP {response.status_code} "
                f"{response.text[:500]}",
                retryable=False,
            )
        try:
            accepted = ExternalSweepAccepted.model_validate_json(response.content)
        except ValidationError as exc:
            raise JobError(
                f"external backtest service at {url} answered without a reference: {exc}", retryable=False
            ) from exc
        log.info("sweep dispatched", service=url, reference=accepted.reference)
        return url, accepted.reference

    async def _post(self, http: httpx.AsyncClient, url: str, body: ExternalSweepRequest) -> httpx.Response:
        try:
            response = await http.post(
                url, content=body.model_dump_json(), timeout=self._timeout, headers={"Content-Type": "application/json"}
            )
        except httpx.HTTPError as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code in (429, 502, 503, 504) or response.status_code >= 500:
            raise _Retryable(f"HTTP {response.status_code}")
        return response
