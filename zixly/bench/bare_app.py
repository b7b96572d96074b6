"""The baseline of the ingest benchmark: a bare FastAPI endpoint that parses the JSON body and answers 202."""

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from kernel.http_metrics import NO_FASTAPI_TELEMETRY


def create_app() -> FastAPI:
    app = FastAPI(telemetry=NO_FASTAPI_TELEMETRY)  # configured as the receiver is

    @app.post("/webhook/generic-job", status_code=202)
    async def accept(body: dict[str, Any]) -> JSONResponse:
        return JSONResponse({"accepted": True}, status_code=202)

    return app
