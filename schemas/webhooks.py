"""What integrators POST, and what the receiver answers."""

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.jobs import JobTypeName


class GenericJobWebhook(BaseModel):
    """``POST /webhook/generic-job``: run one job of a registered type."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [{"job_type": "sleep", "parameters": {"seconds": 0.5}}]},
    )

    job_type: JobTypeName = Field(description="One of the registered job types.")
    parameters: dict[str, Any] = Field(default_factory=dict, description="Validated against the job type.")
    correlation_id: str | None = Field(
        default=None, min_length=1, max_length=128, description="Carried on every event of the job."
    )
    metadata: dict[str, str] = Field(default_factory=dict, description="Free labels kept with the job.")


class JobAccepted(BaseModel):
    """The 202 answer: the event is durably in the log."""

    job_id: uuid.UUID
    status: str = "QUEUED"
    status_url: str
    event_id: uuid.UUID
    correlation_id: str
    partition: int
    offset: int


class ErrorDetail(BaseModel):
    loc: list[str | int] = Field(default_factory=list)
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """Every 4xx/5xx answer of the receiver has this shape."""

    error: str = Field(description="A stable, machine-readable code such as `broker_unavailable`.")
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)


class JobStatusView(BaseModel):
    """``GET /webhook/jobs/{id}``: the job as the read model sees it."""

    job_id: uuid.UUID
    tenant_id: str
    job_type: str
    status: str
    attempts: int
    progress: float
    progress_message: str | None
    parameters: dict[str, Any]
    result: dict[str, Any] | None
    metrics: dict[str, Any] = Field(default_factory=dict, description="Duration, backtests, data used, ...")
    error_type: str | None
    error_message: str | None
    correlation_id: str
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    updated_at: datetime
