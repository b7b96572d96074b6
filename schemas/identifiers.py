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


# What our side effects carry so that the systems they reach can drop a repeat: a job in flight when its worker
# died runs again (at least once), and sends the same key the second time. docs/reliability.md documents them.
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"


def side_effect_key(job_id: uuid.UUID | str, effect: str) -> str:
    """A stable key for one side effect of a job: the same job and effect give the same key on every worker.

    ``http.request:{attempt}`` for a job's call (a retry after a failure the worker saw is a new try, with a new
    key); ``notification:{outcome}:{channel}:{address}`` for a notification.
    """
    job = job_id if isinstance(job_id, uuid.UUID) else uuid.UUID(job_id)
    return str(uuid.uuid5(job, effect))
