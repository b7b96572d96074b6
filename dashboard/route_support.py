"""What every read-only route needs: the read model's engine, and a 422 that names the bad query parameter."""

import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import HTTPException, Request
from pydantic import BeforeValidator
from sqlalchemy.ext.asyncio import AsyncEngine


def engine_of(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


def bad_query(field: str, message: str) -> HTTPException:
    return HTTPException(422, detail=[{"loc": ["query", field], "msg": message, "type": "value_error"}])


def _iso_not_number(value: object) -> object:
    # pydantic reads a bare number as seconds since 1970; the API documents ISO 8601 and means it.
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        raise ValueError("a time must be ISO 8601 (e.g. 2026-11-30T12:00:00Z), not a number")
    return value


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
IsoTime = Annotated[datetime, BeforeValidator(_iso_not_number)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no such job"}}
