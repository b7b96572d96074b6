"""Tokens that let an external service call back about exactly one job, and nothing else.

The pipeline hands the token out with the dispatch; a callback must bring it back. It is an HMAC of tenant and job
under a secret that the workers (which sign) and the receivers (which check) share.
"""

import hashlib
import hmac
import uuid


def callback_token(secret: str, tenant_id: str, job_id: uuid.UUID) -> str:
    return hmac.new(secret.encode(), f"{tenant_id}\x1f{job_id}".encode(), hashlib.sha256).hexdigest()


def token_valid(secret: str, tenant_id: str, job_id: uuid.UUID, token: str) -> bool:
    return hmac.compare_digest(callback_token(secret, tenant_id, job_id), token)
