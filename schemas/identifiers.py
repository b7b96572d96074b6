"""Identifier rules shared by every boundary."""

import uuid
from typing import Annotated

from pydantic import StringConstraints

TenantId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]

# A fixed namespace so that (tenant, idempotency key) maps to the same job id on every receiver replica.
_JOB_ID_NAMESPACE = uuid.UUID("5b0f3a4e-3f57-4a39-9c7e-1f0d1b7a9e21")


def job_id_for_idempotency_key(tenant_id: str, key: str) -> uuid.UUID:
    """The job id a redelivered webhook must map to: a pure function of tenant and key."""
    return uuid.uuid5(_JOB_ID_NAMESPACE, f"{tenant_id}\x1f{key}")
