import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from functools import partial
from typing import Any

import httpx
import pytest

from kernel.outbound import GuardedTransport, InternalHost, OutboundPolicy
from processors.cancellations import CancelRegistry
from processors.jobs.context import JobContext, JobError
from processors.jobs.registry import JobRegistry, JobType, default_registry
from processors.jobs.retry_policy import RetryPolicy
from processors.runner import JobRunner
from schemas.events import (
    JobCancelled,
    JobCompleted,
    JobDeadLettered,
    JobFailed,
    JobProgressed,
    JobRequested,
    JobRequestedPayload,
    JobRetryScheduled,
)
from schemas.identifiers import side_effect_key
from schemas.jobs import NoopParameters
from tests.fakes import FakeDeadLetters, FakePublisher, FakeRetryScheduler
from tests.local_http import local_http_server


def request(job_type: str, **parameters: Any) -> JobRequested:
    return JobRequested(
        tenant_id="acme",
        job_id=uuid.uuid4(),
        correlation_id="corr",
        producer="test",
        payload=JobRequestedPayload(job_type=job_type, parameters=parameters),
    )


@pytest.fixture
def server() -> Iterator[str]:
    with local_http_server() as url:
        yield url


def no_resolution(host: str, port: int) -> list[str]:
    raise OSError(f"the tests resolve no names ({host})")


# As a worker's client, allowing the local test server (loopback, named as internal) and nothing else.
POLICY = OutboundPolicy(("127.0.0.1",), frozenset({80, 443}), (InternalHost("127.0.0.1"),), no_resolution)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=GuardedTransport(POLICY)) as client:
        yield client


def runner_with(
    publisher: FakePublisher,
    http: httpx.AsyncClient,
    registry: JobRegistry | None = None,
    retries: FakeRetryScheduler | None = None,
    dead_letters: FakeDeadLetters | None = None,
) -> JobRunner:
    context = partial(JobContext, http=http, development=True)
    return JobRunner(
        registry or default_registry(),
        publisher,
        "worker-1",
        context,
        retries or FakeRetryScheduler(),
        dead_letters or FakeDeadLetters(),
    )


async def test_a_noop_job_emits_started_then_completed_with_its_echo(http: httpx.AsyncClient) -> None:
    publisher = FakePublisher()
    job = request("noop", echo={"a": 1})
    outcome = await runner_with(publisher, http).run(job)
    assert publisher.types() == ["JobStarted", "JobCompleted"]
    assert isinstance(outcome, JobCompleted)
    assert outcome.payload.result == {"echo": {"a": 1}}
    assert all(e.job_id == job.job_id and e.correlation_id == "corr" for e in publisher.events)
    assert publisher.events[0].causation_id == job.event_id
    assert outcome.causation_id == publisher.events[0].event_id


async def test_a_sleep_job_reports_progress_along_the_way(http: httpx.AsyncClient) -> None:
    publisher = FakePublisher()
    await runner_with(publisher, http).run(request("sleep", seconds=0.04, progress_steps=4))
    progress = [e.payload.progress for e in publisher.events if isinstance(e, JobProgressed)]
    assert progress == [0.25, 0.5, 0.75]
    assert publisher.types()[-1] == "JobCompleted"


async def test_a_job_asked_to_fail_fails_without_retry(http: httpx.AsyncClient) -> None:
    publisher = FakePublisher()
    outcome = await runner_with(publisher, http).run(request("sleep", seconds=0, fail=True))
    assert isinstance(outcome, JobFailed)
    assert outcome.payload.retryable is False
    assert "asked to fail" in outcome.payload.error_message


async def test_an_unknown_job_type_fails_and_is_not_retryable(http: httpx.AsyncClient) -> None:
    outcome = await runner_with(FakePublisher(), http).run(request("teleport"))
    assert isinstance(outcome, JobFailed)
    assert outcome.payload.retryable is False
    assert "teleport" in outcome.payload.error_message


async def test_invalid_parameters_that_reach_a_worker_fail_the_job_clearly(http: httpx.AsyncClient) -> None:
    outcome = await runner_with(FakePublisher(), http).run(request("sleep", seconds="soon"))
    assert isinstance(outcome, JobFailed)
    assert outcome.payload.error_message.startswith("invalid parameters")


async def test_a_crashing_handler_is_retried_then_dead_lettered_with_every_error(http: httpx.AsyncClient) -> None:
    async def crash(parameters: NoopParameters, context: JobContext) -> dict[str, Any]:
        raise ZeroDivisionError(f"division by zero in attempt {context.attempt}")

    registry = JobRegistry([JobType("noop", NoopParameters, crash, RetryPolicy(max_attempts=3))])
    retries, dead_letters, publisher = FakeRetryScheduler(), FakeDeadLetters(), FakePublisher()
    runner = runner_with(publisher, http, registry, retries, dead_letters)
    job = request("noop")
    outcome = await runner.run(job)
    while isinstance(outcome, JobRetryScheduled):
        retry = retries.scheduled[-1]
        assert retry.attempt == outcome.payload.next_attempt
        outcome = await runner.run(retry.request, retry.attempt, retry.history)

    assert isinstance(outcome, JobDeadLettered)
    assert outcome.payload.attempts == 3
    assert [h.error_message for h in outcome.payload.history] == [f"division by zero in attempt {n}" for n in (1, 2, 3)]
    [(origin, error_type, _, stage)] = dead_letters.letters
    assert (error_type, stage, origin.key) == ("ZeroDivisionError", "attempts_exhausted", str(job.job_id).encode())
    assert publisher.types().count("JobRetryScheduled") == 2


async def test_an_http_request_job_calls_an_allowed_host_and_keeps_the_answer(
    http: httpx.AsyncClient, server: str
) -> None:
    outcome = await runner_with(FakePublisher(), http).run(
        request("http.request", url=f"{server}/hook", method="POST", json_body={"n": 1})
    )
    assert isinstance(outcome, JobCompleted)
    assert outcome.payload.result["status_code"] == 200
    assert outcome.payload.result["json"] == {"path": "/hook", "method": "POST", "received": '{"n":1}'}


async def test_an_http_request_carries_an_idempotency_key_stable_for_its_job_and_attempt(
    http: httpx.AsyncClient, server: str
) -> None:
    job = request("http.request", url=f"{server}/echo-headers", method="POST")
    keys = []
    for _ in range(2):  # the same attempt run again, as after its worker died
        outcome = await runner_with(FakePublisher(), http).run(job)
        assert isinstance(outcome, JobCompleted)
        keys.append(outcome.payload.result["json"]["headers"]["Idempotency-Key"])
    assert keys[0] == keys[1] == side_effect_key(job.job_id, "http.request:1")
    another = await runner_with(FakePublisher(), http).run(request("http.request", url=f"{server}/echo-headers"))
    assert isinstance(another, JobCompleted)
    assert another.payload.result["json"]["headers"]["Idempotency-Key"] != keys[0]


async def test_a_jobs_own_idempotency_key_is_sent_as_it_is(http: httpx.AsyncClient, server: str) -> None:
    job = request("http.request", url=f"{server}/echo-headers", method="POST", headers={"idempotency-key": "order-7"})
    outcome = await runner_with(FakePublisher(), http).run(job)
    assert isinstance(outcome, JobCompleted)
    sent = outcome.payload.result["json"]["headers"]
    assert [value for name, value in sent.items() if name.lower() == "idempotency-key"] == ["order-7"]


async def test_an_http_request_answered_with_500_is_retried_after_a_backoff(
    http: httpx.AsyncClient, server: str
) -> None:
    retries = FakeRetryScheduler()
    outcome = await runner_with(FakePublisher(), http, retries=retries).run(
        request("http.request", url=f"{server}/fail")
    )
    assert isinstance(outcome, JobRetryScheduled)
    assert "500" in outcome.payload.error_message
    assert outcome.payload.next_attempt == 2
    assert retries.scheduled[0].due_at == outcome.payload.due_at


async def test_an_http_request_times_out_as_configured(http: httpx.AsyncClient, server: str) -> None:
    outcome = await runner_with(FakePublisher(), http).run(
        request("http.request", url=f"{server}/slow", timeout_seconds=0.2)
    )
    assert isinstance(outcome, JobRetryScheduled)
    assert "timed out after 0.2s" in outcome.payload.error_message


async def test_an_http_request_does_not_follow_a_redirect_off_the_allow_list(
    http: httpx.AsyncClient, server: str
) -> None:
    outcome = await runner_with(FakePublisher(), http).run(request("http.request", url=f"{server}/redirect"))
    assert isinstance(outcome, JobFailed)
    assert "302" in outcome.payload.error_message


async def test_an_http_request_to_a_host_off_the_allow_list_never_leaves_the_worker(http: httpx.AsyncClient) -> None:
    outcome = await runner_with(FakePublisher(), http).run(request("http.request", url="http://10.0.0.1/"))
    assert isinstance(outcome, JobFailed)
    assert outcome.payload.retryable is False
    assert "allow-list" in outcome.payload.error_message


async def test_a_job_that_fails_twice_then_succeeds_completes_on_its_third_attempt(http: httpx.AsyncClient) -> None:
    retries, publisher = FakeRetryScheduler(), FakePublisher()
    runner = runner_with(publisher, http, retries=retries)
    outcome = await runner.run(request("sleep", seconds=0, progress_steps=0, fail_attempts=2))
    while isinstance(outcome, JobRetryScheduled):
        outcome = await runner.run(
            retries.scheduled[-1].request, retries.scheduled[-1].attempt, retries.scheduled[-1].history
        )
    assert isinstance(outcome, JobCompleted)
    assert outcome.payload.attempt == 3
    assert publisher.types() == ["JobStarted", "JobRetryScheduled"] * 2 + ["JobStarted", "JobCompleted"]


async def test_an_attempt_over_its_time_limit_is_retried(http: httpx.AsyncClient) -> None:
    registry = default_registry(retry=RetryPolicy(max_attempts=2, timeout_seconds=0.05))
    outcome = await runner_with(FakePublisher(), http, registry).run(request("sleep", seconds=1, progress_steps=0))
    assert isinstance(outcome, JobRetryScheduled)
    assert outcome.payload.error_type == "AttemptTimedOut"


async def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    policy = RetryPolicy(base_delay_seconds=1, max_delay_seconds=10)
    rng = random.Random(1)
    delays = [policy.delay(attempt, rng) for attempt in (1, 2, 3, 4, 5, 6)]
    for attempt, delay in zip((1, 2, 3, 4, 5, 6), delays, strict=True):
        step = min(10, 2 ** (attempt - 1))
        assert step / 2 <= delay <= step
    assert len({round(d, 6) for d in delays}) == len(delays)


async def test_a_non_retryable_error_class_fails_at_once(http: httpx.AsyncClient) -> None:
    registry = default_registry(retry=RetryPolicy(max_attempts=5, non_retryable=("JobError",)))
    outcome = await runner_with(FakePublisher(), http, registry).run(
        request("sleep", seconds=0, progress_steps=0, fail_attempts=1)
    )
    assert isinstance(outcome, JobFailed)


async def test_a_job_whose_cancel_was_read_stops_at_its_next_checkpoint(http: httpx.AsyncClient) -> None:
    cancellations, publisher = CancelRegistry(), FakePublisher()
    context = partial(JobContext, http=http)
    runner = JobRunner(
        default_registry(), publisher, "w", context, FakeRetryScheduler(), FakeDeadLetters(), cancellations
    )
    job = request("sleep", seconds=2, progress_steps=10)
    running = asyncio.create_task(runner.run(job))
    async with asyncio.timeout(5):  # cancelled while it runs: once it has reported progress
        while "JobProgressed" not in publisher.types():
            await asyncio.sleep(0.01)
    cancellations.request(str(job.job_id))
    outcome = await asyncio.wait_for(running, timeout=1)
    assert isinstance(outcome, JobCancelled)
    assert publisher.types()[-1] == "JobCancelled"


async def test_a_retry_of_a_cancelled_job_does_not_run(http: httpx.AsyncClient) -> None:
    cancellations = CancelRegistry()
    context = partial(JobContext, http=http)
    runner = JobRunner(
        default_registry(), FakePublisher(), "w", context, FakeRetryScheduler(), FakeDeadLetters(), cancellations
    )
    job = request("noop")
    cancellations.request(str(job.job_id))
    assert isinstance(await runner.run(job, attempt=2), JobCancelled)


async def test_a_worker_outside_development_does_not_honour_test_only_options() -> None:
    from processors.jobs.context import JobError
    from processors.jobs.sleep import run_sleep
    from schemas.jobs import SleepParameters

    unused: Any = None
    context = JobContext(
        job_id="j",
        tenant_id="t",
        attempt=1,
        report_progress=unused,
        started=unused,
        publish=unused,
        http=unused,
    )
    with pytest.raises(JobError, match="crash: test-only options are honoured in development only"):
        await run_sleep(SleepParameters(seconds=0, crash=True), context)


class Secrets:
    def __init__(self, values: dict[tuple[str, str], str]) -> None:
        self.values = values

    async def value(self, tenant_id: str, name: str) -> str | None:
        return self.values.get((tenant_id, name))


def runner_with_secrets(http: httpx.AsyncClient, secrets: Secrets) -> JobRunner:
    context = partial(JobContext, http=http, development=True, secrets=secrets)
    return JobRunner(default_registry(), FakePublisher(), "worker-1", context, FakeRetryScheduler(), FakeDeadLetters())


async def test_a_header_naming_a_secret_is_sent_its_value_and_the_echo_is_stored_with_its_name(
    http: httpx.AsyncClient, server: str
) -> None:
    secrets = Secrets({("acme", "crm-token"): "Bearer s3cr3t-value-of-acme"})
    outcome = await runner_with_secrets(http, secrets).run(
        request("http.request", url=f"{server}/echo-headers", headers={"Authorization": {"secret": "crm-token"}})
    )
    assert isinstance(outcome, JobCompleted)
    echoed = outcome.payload.result["json"]["headers"]
    assert echoed["Authorization"] == "[secret crm-token]"  # the server got the value; the result keeps the name
    assert "s3cr3t" not in outcome.model_dump_json()


async def test_a_secret_the_tenant_does_not_have_fails_the_job_without_retry(
    http: httpx.AsyncClient, server: str
) -> None:
    # Another tenant's secret of that name is not this job's: the store is asked for the job's tenant only.
    secrets = Secrets({("globex", "crm-token"): "globex-value"})
    outcome = await runner_with_secrets(http, secrets).run(
        request("http.request", url=f"{server}/echo-headers", headers={"X-Api-Key": {"secret": "crm-token"}})
    )
    assert isinstance(outcome, JobFailed)
    assert outcome.payload.error_message == "tenant 'acme' has no secret 'crm-token' (`zixly tenants secrets set`)"


async def test_a_failure_that_quotes_a_credential_is_stored_redacted(http: httpx.AsyncClient) -> None:
    async def leaky(parameters: NoopParameters, context: JobContext) -> dict[str, Any]:
        raise JobError(
            "GET https://u:pw@example.com/?api_key=abc123 sent Authorization: Bearer abcdefghijkl", retryable=False
        )

    registry = JobRegistry([JobType("noop", NoopParameters, leaky, RetryPolicy(max_attempts=1))])
    outcome = await runner_with(FakePublisher(), http, registry).run(request("noop"))
    assert isinstance(outcome, JobFailed)
    message = outcome.payload.error_message
    assert "pw@" not in message
    assert "abc123" not in message
    assert "abcdefghijkl" not in message
