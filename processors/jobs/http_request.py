"""Calls a client system's URL, only if its host is allowed, with a timeout and no redirects.

Redirects are not followed: a redirect could lead off the allow-list.
"""

import contextlib
import time
from typing import Any

import httpx

from kernel.hosts import host_allowed
from processors.jobs.context import JobContext, JobError
from schemas.jobs import HttpRequestParameters

BODY_EXCERPT_BYTES = 64 * 1024


async def run_http_request(parameters: HttpRequestParameters, context: JobContext) -> dict[str, Any]:
    host = parameters.url.host or ""
    if not host_allowed(host, context.allowed_hosts):
        raise JobError(f"host {host!r} is not on the allow-list", retryable=False)
    started = time.perf_counter()
    try:
        response = await context.http.request(
            parameters.method,
            str(parameters.url),
            headers=parameters.headers,
            json=parameters.json_body,
            timeout=parameters.timeout_seconds,
            follow_redirects=False,
        )
    except httpx.TimeoutException as exc:
        raise JobError(
            f"{parameters.method} {parameters.url} timed out after {parameters.timeout_seconds}s",
            retryable=True,
        ) from exc
    except httpx.HTTPError as exc:
        raise JobError(f"{parameters.method} {parameters.url} failed: {exc!r}", retryable=True) from exc
    elapsed_ms = (time.perf_counter() - started) * 1000
    excerpt = response.content[:BODY_EXCERPT_BYTES].decode(errors="replace")
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
        "truncated": len(response.content) > BODY_EXCERPT_BYTES,
    }
    if "json" in (response.headers.get("content-type") or ""):
        with contextlib.suppress(ValueError):  # a JSON content type with a broken body: keep the text only
            result["json"] = response.json()
    return result
