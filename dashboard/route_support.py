"""What every read-only route needs: the read model's engine, and a 422 that names the bad query parameter."""

from fastapi import HTTPException, Request
from sqlalchemy.ext.asyncio import AsyncEngine


def engine_of(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


def bad_query(field: str, message: str) -> HTTPException:
    return HTTPException(422, detail=[{"loc": ["query", field], "msg": message, "type": "value_error"}])
