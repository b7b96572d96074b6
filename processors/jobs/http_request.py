"""Calls a client system's URL through the outbound policy (kernel/outbound.py): an allowed host that resolves to
public addresses only (or one the operator named as internal for the tenant), connected to at the checked address,
with a timeout, no redirects, and the answer read up to 64 KB. Headers that name a tenant secret get its value
here, at the last moment; an answer that echoes it back is stored with the name in its place.

Every call carries an ``Idempotency-Key`` derived from the job and its attempt (unless the job sets its own): an
attempt that runs again because its worker died sends the same key, so the client system can answer it once.
"""

import contextlib
import json
import time
from typing import Any

import httpx

from kernel.outbound import RESERVED_HEADERS, OutboundRefused, read_capped
from kernel.redaction import redact_values
from processors.jobs.context import JobContext, JobError
from schemas.identifiers import IDEMPOTENCY_KEY_HEADER, side_effect_key
from schemas.jobs import HttpRequestParameters, SecretReference

BODY_EXCERPT_BYTES = 64 * 1024


async def run_http_request(parameters: HttpRequestParameters, context: JobContext) -> dict[str, Any]:
    headers: dict[str, str] = {}
    secrets: dict[str, str] = {}  # name -> value, to take back out of whatever the answer echoes
    for name, value in parameters.headers.items():
        if name.lower() in RESERVED_HEADERS:
            continue
        if isinstance(value, SecretReference):
            secrets[value.secret] = headers[name] = await context.secret(value.secret)
        else:
            headers[name] = value
    if not any(name.lower() == IDEMPOTENCY_KEY_HEADER.lower() for name in headers):
        headers[IDEMPOTENCY_KEY_HEADER] = side_effect_key(context.job_id, f"http.request:{context.attempt}")
    started = time.perf_counter()
    request = context.http.build_request(
        parameters.method,
        str(parameters.url),
        headers=headers,
        json=parameters.json_body,
        timeout=parameters.timeout_seconds,
        extensions={"zixly_tenant": context.tenant_id},
    )
    try:
        response = await context.http.send(request, stream=True, follow_redirects=False)
        try:
            content, truncated = await read_capped(response, BODY_EXCERPT_BYTES)
        finally:
            await response.aclose()
    except OutboundRefused as refused:
        raise JobError(f"{parameters.method} {parameters.url} refused: {refused}", retryable=False) from None
    except httpx.TimeoutException as exc:
        raise JobError(
            f"{parameters.method} {parameters.url} timed out after {parameters.timeout_seconds}s",
            retryable=True,
        ) from exc
    except httpx.HTTPError as exc:
        raise JobError(f"{parameters.method} {parameters.url} failed: {exc!r}", retryable=True) from exc
    elapsed_ms = (time.perf_counter() - started) * 1000
    excerpt = redact_values(content.decode(errors="replace"), secrets)
    ok = response.status_code in parameters.expected_status if parameters.expected_status else response.is_success
    if not ok:
        raise JobError(
            f"{parameters.method} {parameters.url} answered {response.status_code}",
            retryable=response.status_code >= 500 or response.status_code == 429,
            detail=excerpt[:4000],
        )
    result: dict[str, Any] = {
        "status_code": response.status_code,
        "elapsed_ms": round(elapsed_ms, 3),
        "content_type": response.headers.get("content-type"),
        "body": excerpt,
        "truncated": truncated,
    }
    if "json" in (response.headers.get("content-type") or "") and not truncated:
        with contextlib.suppress(ValueError):  # a JSON content type with a broken body: keep the text only
            result["json"] = json.loads(excerpt)
    return result
