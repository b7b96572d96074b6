"""Job types and the parameters each one accepts.

The receiver validates a job's parameters against these models before anything reaches the log, so a worker
never meets parameters it cannot read.
"""

from typing import Annotated, Any, Literal, get_args

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from schemas.job_parameters import JobParameters
from schemas.sweeps import SWEEP_JOB_TYPE, TradingSweepParameters


class NoopParameters(JobParameters):
    """Does nothing and completes: for smoke tests and for measuring the pipeline's own overhead."""

    echo: dict[str, Any] | None = Field(default=None, description="Returned unchanged as the job's result.")


class SleepParameters(JobParameters):
    """Waits without using CPU, reporting progress: for load tests and for watching a job run."""

    seconds: Annotated[float, Field(ge=0, le=3600)] = 1.0
    progress_steps: Annotated[int, Field(ge=0, le=100)] = Field(
        default=4, description="How many JobProgressed events to emit along the way."
    )
    fail: bool = Field(default=False, description="Fail at the end, for good, instead of completing (for tests).")
    fail_attempts: Annotated[int, Field(ge=0, le=100)] = Field(
        default=0, description="Fail the first N attempts with an error worth retrying (for tests of retries)."
    )
    crash: bool = Field(default=False, description="Crash on every attempt (for tests of dead letters).")

    def test_options(self, longest_sleep: float) -> list[str]:
        """The options only tests may use, each as the field it is set in; what production refuses."""
        used = [name for name in ("fail", "crash") if getattr(self, name)]
        used += ["fail_attempts"] if self.fail_attempts else []
        used += ["seconds"] if self.seconds > longest_sleep else []
        return used


# The longest sleep outside development: enough to watch a job run, not a way to hold a worker's slot for an hour.
PRODUCTION_LONGEST_SLEEP = 60.0


SECRET_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class SecretReference(BaseModel):
    """A tenant secret named in a job (``zixly tenants secrets set``): the worker puts its value in the request at
    run time, so the log, the read model and the pages only ever hold the name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    secret: str = Field(pattern=SECRET_NAME_PATTERN, description="The name of one of the tenant's secrets.")


class HttpRequestParameters(JobParameters):
    """Calls a client system's URL. Only hosts on the workers' allow-list may be called."""

    url: AnyHttpUrl
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    headers: dict[str, str | SecretReference] = Field(
        default_factory=dict,
        description='A credential goes in as {"secret": "<name>"}: the worker sends the tenant secret of that name.',
    )
    json_body: Any | None = Field(default=None, description="Sent as the JSON request body.")
    timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 10.0
    expected_status: list[Annotated[int, Field(ge=100, le=599)]] | None = Field(
        default=None, description="Statuses that count as success; any 2xx when omitted."
    )


JOB_PARAMETERS: dict[str, type[JobParameters]] = {
    "noop": NoopParameters,
    "sleep": SleepParameters,
    "http.request": HttpRequestParameters,
    SWEEP_JOB_TYPE: TradingSweepParameters,
}

JobTypeName = Literal["noop", "sleep", "http.request", "trading.sweep"]
"""The registered job types, as the webhook contract states them (a test keeps this equal to JOB_PARAMETERS)."""
JOB_TYPE_NAMES: tuple[str, ...] = get_args(JobTypeName)
