"""Events on the job log: immutable facts, named in the past tense.

Every event is an envelope (who, when, which job, what caused it) around a typed payload. A published
``(event_type, schema_version)`` is never changed in place; a new version is added instead and read through an
upcaster.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.identifiers import TenantId
from schemas.sweeps import DataFingerprint, SweepResultRow


def utc_now() -> datetime:
    return datetime.now(UTC)


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Event(BaseModel):
    """The envelope that every event on the log carries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    event_type: str
    schema_version: int
    occurred_at: AwareDatetime = Field(default_factory=utc_now)
    tenant_id: TenantId
    job_id: uuid.UUID
    correlation_id: str = Field(min_length=1, max_length=128)
    causation_id: uuid.UUID | None = Field(
        default=None, description="The event that caused this one; none for an event caused by a request."
    )
    producer: str = Field(min_length=1, max_length=64, description="The service that appended the event.")
    payload: Payload

    TYPE: ClassVar[str]
    """The event's name on the log. An event declares its name and version once, as the defaults of its
    ``event_type`` and ``schema_version`` literal fields (the discriminators that decoding needs); these two
    class attributes are read from them."""
    VERSION: ClassVar[int]

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        event_type, version = cls.model_fields["event_type"].default, cls.model_fields["schema_version"].default
        if not isinstance(event_type, str) or not isinstance(version, int):
            raise TypeError(f"{cls.__name__} declares no event_type and schema_version literals with their defaults")
        cls.TYPE, cls.VERSION = event_type, version


E = TypeVar("E", bound=Event)
# Every field of the envelope but the payload, in their order: the columns a stored event keeps them in.
ENVELOPE_FIELDS = tuple(name for name in Event.model_fields if name != "payload")


def follow_up(
    cause: Event, event_type: type[E], *, producer: str, payload: Payload, event_id: uuid.UUID | None = None
) -> E:
    """An event caused by ``cause``: same job, tenant and correlation, with the causation recorded.

    Pass ``event_id`` (see ``derived_event_id``) for an event that a redelivery may produce again, so that the copy
    is recognisably the same fact.
    """
    # event_type and schema_version are defaulted by each concrete event class, which mypy cannot see via type[E].
    return event_type(  # type: ignore[call-arg]
        event_id=event_id or uuid.uuid4(),
        tenant_id=cause.tenant_id,
        job_id=cause.job_id,
        correlation_id=cause.correlation_id,
        causation_id=cause.event_id,
        producer=producer,
        payload=payload,
    )


@dataclass(frozen=True)
class Emitter:
    """Makes the events that one service appends as consequences of others: the service is named once, where it is
    wired, instead of in every event it makes."""

    producer: str

    def __call__(self, cause: Event, event_type: type[E], payload: Payload, *, fact: str | None = None) -> E:
        """An event of ``event_type`` caused by ``cause`` (see ``follow_up``).

        ``fact`` names what the event records about the job (``"cancelled"``, ``"sweep-results:7"``). The event's id
        is derived from the job and the fact, so that a redelivery that records the fact again makes the very same
        event; without one, the event gets a fresh id.
        """
        event_id = derived_event_id(cause.job_id, fact) if fact is not None else None
        return follow_up(cause, event_type, producer=self.producer, payload=payload, event_id=event_id)


def derived_event_id(job_id: uuid.UUID, fact: str) -> uuid.UUID:
    """The same id for the same fact about a job, however many times it is produced."""
    return uuid.uuid5(job_id, fact)


class JobRequestedPayload(Payload):
    job_type: str = Field(min_length=1, max_length=64)
    parameters: dict[str, Any]
    idempotency_key: str | None = Field(default=None, max_length=255)
    metadata: dict[str, str] = Field(default_factory=dict)


class JobRequested(Event):
    event_type: Literal["JobRequested"] = "JobRequested"
    schema_version: Literal[1] = 1
    payload: JobRequestedPayload


class JobStartedPayload(Payload):
    """Version 2 splits version 1's ``worker`` ("host:pid") into its parts, so that reports can group by host."""

    attempt: int = Field(ge=1)
    host: str = Field(min_length=1, max_length=128, description="The machine (or pod) the worker runs on.")
    process_id: int | None = Field(default=None, ge=1, description="The worker's process id, where known.")


class JobStarted(Event):
    event_type: Literal["JobStarted"] = "JobStarted"
    schema_version: Literal[2] = 2
    payload: JobStartedPayload


class JobProgressedPayload(Payload):
    attempt: int = Field(ge=1)
    progress: float = Field(ge=0.0, le=1.0, description="Fraction done, from 0 to 1.")
    message: str | None = Field(default=None, max_length=1000)


class JobProgressed(Event):
    event_type: Literal["JobProgressed"] = "JobProgressed"
    schema_version: Literal[1] = 1
    payload: JobProgressedPayload


class JobCompletedPayload(Payload):
    attempt: int = Field(ge=1)
    result: dict[str, Any]
    duration_ms: float = Field(ge=0)


class JobCompleted(Event):
    event_type: Literal["JobCompleted"] = "JobCompleted"
    schema_version: Literal[1] = 1
    payload: JobCompletedPayload


class JobFailedPayload(Payload):
    attempt: int = Field(ge=1)
    error_type: str = Field(min_length=1, max_length=200)
    error_message: str = Field(max_length=10_000)
    error_detail: str | None = Field(default=None, description="Stack trace or response excerpt.")
    retryable: bool
    duration_ms: float = Field(ge=0)


class JobFailed(Event):
    event_type: Literal["JobFailed"] = "JobFailed"
    schema_version: Literal[1] = 1
    payload: JobFailedPayload


def added_later(description: str, **constraints: Any) -> Any:
    """A payload field added after its schema version was first written: None unless given, so that events logged
    before still decode, and left out of a dump while None, so that they project to the very rows they did (no
    table of the read model changes for the same log; the golden log holds it)."""
    return Field(default=None, exclude_if=lambda value: value is None, description=description, **constraints)


class SweepPlannedPayload(Payload):
    attempt: int = Field(ge=1)
    chunk_count: int = Field(ge=1)
    backtest_count: int = Field(ge=1)
    data: list[DataFingerprint] = Field(description="Exactly which prices each ticker's backtests use.")
    parameters: dict[str, Any] = Field(description="The sweep as requested, for whoever completes it.")
    # A re-run of a sweep planned before the engine's version was recorded reports it as not recorded.
    engine_version: str | None = added_later(
        "The backtest engine's code version (a digest of its source and libraries)."
    )
    # Added later too; empty rather than None, and left out of a dump while empty.
    settings: dict[str, Any] = Field(
        default_factory=dict,
        exclude_if=lambda value: not value,
        description="The worker settings the sweep ran with (chunk size, best cells kept).",
    )


class SweepPlanned(Event):
    """A sweep's grid was split into chunks on the work topic; the job completes when all are recorded."""

    event_type: Literal["SweepPlanned"] = "SweepPlanned"
    schema_version: Literal[1] = 1
    payload: SweepPlannedPayload


class SweepResultsRecordedPayload(Payload):
    chunk_index: int = Field(ge=0)
    chunk_count: int = Field(ge=1)
    rows: list[SweepResultRow]
    artifact_key: str | None = Field(default=None, description="The chunk's rows as Parquet in the object store.")
    worker: str = Field(min_length=1, max_length=128)
    duration_ms: float = Field(ge=0)
    fold: int | None = added_later("The walk-forward fold whose training window these rows were ranked on.", ge=0)
    first_combination: int | None = added_later(
        "The grid position of the first row (the rows follow the grid's order from there).", ge=0
    )


class SweepResultsRecorded(Event):
    """One chunk of a sweep is done: its backtests and their metrics."""

    event_type: Literal["SweepResultsRecorded"] = "SweepResultsRecorded"
    schema_version: Literal[1] = 1
    payload: SweepResultsRecordedPayload


class SweepDispatchedPayload(Payload):
    attempt: int = Field(ge=1)
    service_url: str = Field(max_length=2000)
    external_reference: str = Field(min_length=1, max_length=200)
    backtest_count: int = Field(ge=1)
    data: list[DataFingerprint] = Field(description="The prices the sweep names, as this pipeline sees them.")
    parameters: dict[str, Any]


class SweepDispatched(Event):
    """The sweep was handed to the tenant's external backtest service, which will call back with results."""

    event_type: Literal["SweepDispatched"] = "SweepDispatched"
    schema_version: Literal[1] = 1
    payload: SweepDispatchedPayload


class SweepCallbackReceivedPayload(Payload):
    external_reference: str = Field(min_length=1, max_length=200)
    status: Literal["completed", "failed"]
    part_index: int = Field(default=0, ge=0, description="Large results arrive as several events (parts).")
    part_count: int = Field(default=1, ge=1)
    rows: list[SweepResultRow] = Field(default_factory=list)
    error: str | None = Field(default=None, max_length=10_000)


class SweepCallbackReceived(Event):
    """The external backtest service called back: its results, or why it failed."""

    event_type: Literal["SweepCallbackReceived"] = "SweepCallbackReceived"
    schema_version: Literal[1] = 1
    payload: SweepCallbackReceivedPayload


class AttemptError(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    attempt: int = Field(ge=1)
    error_type: str = Field(max_length=200)
    error_message: str = Field(max_length=10_000)
    failed_at: AwareDatetime


class JobRetryScheduledPayload(Payload):
    attempt: int = Field(ge=1, description="The attempt that failed.")
    next_attempt: int = Field(ge=2)
    delay_seconds: float = Field(ge=0)
    due_at: AwareDatetime
    error_type: str = Field(max_length=200)
    error_message: str = Field(max_length=10_000)


class JobRetryScheduled(Event):
    """An attempt failed in a way that trying again could help; the next one is due at ``due_at``."""

    event_type: Literal["JobRetryScheduled"] = "JobRetryScheduled"
    schema_version: Literal[1] = 1
    payload: JobRetryScheduledPayload


class JobDeadLetteredPayload(Payload):
    attempts: int = Field(ge=1)
    reason: str = Field(max_length=1000)
    history: list[AttemptError] = Field(description="Every failed attempt, oldest first.")
    dead_letter_topic: str


class JobDeadLettered(Event):
    """The job gave up: its attempts are spent (or it cannot run at all); its request is on the dead-letter topic."""

    event_type: Literal["JobDeadLettered"] = "JobDeadLettered"
    schema_version: Literal[1] = 1
    payload: JobDeadLetteredPayload


class DeadLetterResubmittedPayload(Payload):
    new_job_id: uuid.UUID
    dead_letter_offset: int = Field(ge=0)
    operator: str = Field(max_length=200)
    reason: str = Field(max_length=2000)


class DeadLetterResubmitted(Event):
    """An operator sent a dead-lettered job back: it runs again as a new job."""

    event_type: Literal["DeadLetterResubmitted"] = "DeadLetterResubmitted"
    schema_version: Literal[1] = 1
    payload: DeadLetterResubmittedPayload


class JobCancelRequestedPayload(Payload):
    reason: str | None = Field(default=None, max_length=1000)
    requested_by: str = Field(max_length=200, description="Who asked: the tenant's webhook, or an operator.")


class JobCancelRequested(Event):
    """Someone asked for the job to stop; workers honour it at their next checkpoint (between steps or chunks)."""

    event_type: Literal["JobCancelRequested"] = "JobCancelRequested"
    schema_version: Literal[1] = 1
    payload: JobCancelRequestedPayload


class JobCancelledPayload(Payload):
    attempt: int = Field(ge=1)
    reason: str | None = Field(default=None, max_length=1000)


class JobCancelled(Event):
    event_type: Literal["JobCancelled"] = "JobCancelled"
    schema_version: Literal[1] = 1
    payload: JobCancelledPayload


class NotificationSentPayload(Payload):
    channel: Literal["slack", "email"]
    target: str = Field(max_length=500, description="Where it went (a Slack URL without its secret path).")
    outcome: str = Field(max_length=64, description="The event it was about, e.g. JobCompleted.")
    attempts: int = Field(ge=1)


class NotificationSent(Event):
    event_type: Literal["NotificationSent"] = "NotificationSent"
    schema_version: Literal[1] = 1
    payload: NotificationSentPayload


class NotificationFailedPayload(Payload):
    channel: Literal["slack", "email"]
    target: str = Field(max_length=500)
    outcome: str = Field(max_length=64)
    attempts: int = Field(ge=1)
    error: str = Field(max_length=2000)


class NotificationFailed(Event):
    """A notification could not be delivered; the job it was about is not affected."""

    event_type: Literal["NotificationFailed"] = "NotificationFailed"
    schema_version: Literal[1] = 1
    payload: NotificationFailedPayload


JobEvent = Annotated[
    JobRequested
    | JobStarted
    | JobProgressed
    | JobCompleted
    | JobFailed
    | SweepPlanned
    | SweepResultsRecorded
    | SweepDispatched
    | SweepCallbackReceived
    | JobRetryScheduled
    | JobDeadLettered
    | DeadLetterResubmitted
    | JobCancelRequested
    | JobCancelled
    | NotificationSent
    | NotificationFailed,
    Field(discriminator="event_type"),
]

EVENT_TYPES: tuple[type[Event], ...] = (
    JobRequested,
    JobStarted,
    JobProgressed,
    JobCompleted,
    JobFailed,
    SweepPlanned,
    SweepResultsRecorded,
    SweepDispatched,
    SweepCallbackReceived,
    JobRetryScheduled,
    JobDeadLettered,
    DeadLetterResubmitted,
    JobCancelRequested,
    JobCancelled,
    NotificationSent,
    NotificationFailed,
)
