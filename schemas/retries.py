"""Work items of the retry topic: a job attempt to run again once it is due."""

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.events import AttemptError, JobRequested


class RetryRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    request: JobRequested
    attempt: int = Field(ge=2, description="The attempt to run.")
    due_at: AwareDatetime
    history: list[AttemptError]
