"""Every error the receiver answers has one shape (ErrorResponse): a code, a sentence, and field details."""

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from kernel.logging import get_logger
from schemas.webhooks import ErrorDetail, ErrorResponse

log = get_logger(__name__)


class ApiError(Exception):
    def __init__(
        self,
        status_code: int,
        error: str,
        message: str,
        details: Sequence[ErrorDetail] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error = error
        self.message = message
        self.details = list(details)
        self.headers = headers


def validation_details(errors: Sequence[Any]) -> list[ErrorDetail]:
    return [
        ErrorDetail(
            loc=[part for part in err.get("loc", ()) if isinstance(part, str | int)], msg=err["msg"], type=err["type"]
        )
        for err in errors
    ]


def error_response(
    status_code: int,
    error: str,
    message: str,
    details: Sequence[ErrorDetail] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorResponse(error=error, message=message, details=list(details))
    return JSONResponse(body.model_dump(mode="json"), status_code=status_code, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status_code, exc.error, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = validation_details(exc.errors())
        fields = ", ".join(".".join(str(p) for p in d.loc) for d in details)
        return error_response(422, "invalid_request", f"the request is not valid: {fields}", details)

    @app.exception_handler(SQLAlchemyError)
    async def _store_unavailable(_: Request, exc: SQLAlchemyError) -> JSONResponse:
        # The read model is down (or a migration is missing): say so rather than answer 500.
        log.warning("read model unavailable", error=repr(exc)[:300])
        return error_response(
            503,
            "store_unavailable",
            "the job store is not reachable right now; retry later",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), headers=dict(exc.headers or {}) or None)
