"""The base of every job type's parameters model."""

from pydantic import BaseModel, ConfigDict


class JobParameters(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
