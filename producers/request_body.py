"""Reading a webhook body with a size limit and a JSON-only content type, before any parsing."""

from fastapi import Request
from starlette.requests import ClientDisconnect

from producers.errors import ApiError


def _is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


async def read_json_body(request: Request, limit: int) -> bytes:
    """The raw body; 415 for a non-JSON content type, 413 past ``limit`` bytes (checked while streaming)."""
    content_type = request.headers.get("content-type", "")
    if not _is_json(content_type):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"the body must be JSON (Content-Type: application/json), not {content_type or 'unspecified'!r}",
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(size, limit)
            chunks.append(chunk)
    except ClientDisconnect:
        # Nobody is left to answer; nothing was accepted.
        raise ApiError(400, "client_disconnected", "the client went away before sending the whole body") from None
    return b"".join(chunks)


async def read_optional_json_body(request: Request, limit: int) -> bytes:
    """As ``read_json_body``, for a body that may be left out: a request without one (no Content-Type, no length or
    a zero length) reads as empty rather than as the wrong media type."""
    declared = request.headers.get("content-length")
    if "content-type" not in request.headers and declared in (None, "0"):
        chunk = b""
        async for chunk in request.stream():
            if chunk:
                break
        if not chunk:
            return b""
        raise ApiError(415, "unsupported_media_type", "a body was sent without a Content-Type; send JSON")
    return await read_json_body(request, limit)


def _too_large(size: int, limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"the body has at least {size} bytes; the limit is {limit}")
