"""Turning a validated webhook into the JobRequested event that goes on the log."""

import uuid
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from kernel.outbound import OutboundPolicy, OutboundRefused, caller_headers
from kernel.redaction import credential_query_names, literal_credentials
from producers.errors import ApiError, validation_details
from schemas.events import JobRequested, JobRequestedPayload, derived_event_id
from schemas.identifiers import job_id_for_idempotency_key
from schemas.jobs import JOB_PARAMETERS, PRODUCTION_LONGEST_SLEEP, HttpRequestParameters, SleepParameters
from schemas.sweeps import SweepCallbackWebhook, TradingSweepWebhook
from schemas.webhooks import ErrorDetail, GenericJobWebhook

PRODUCER = "receiver"
"""What the receiver's events name as their producer."""
M = TypeVar("M", bound=BaseModel)


def parse_generic_job(
    body: bytes, outbound: OutboundPolicy, tenant_id: str, development: bool = False
) -> GenericJobWebhook:
    """The webhook with its job parameters checked against its job type; ApiError(422) with field errors."""
    try:
        webhook = GenericJobWebhook.model_validate_json(body)
    except ValidationError as exc:
        details = validation_details(exc.errors(include_url=False))
        raise ApiError(422, "invalid_payload", "the webhook payload is not valid", details) from exc
    parameters_model = JOB_PARAMETERS[webhook.job_type]
    try:
        parameters = parameters_model.model_validate(webhook.parameters)
    except ValidationError as exc:
        details = validation_details(
            [{**err, "loc": ("parameters", *err["loc"])} for err in exc.errors(include_url=False)]
        )
        raise ApiError(
            422, "invalid_parameters", f"the parameters do not fit job type {webhook.job_type!r}", details
        ) from exc
    used = parameters.test_options(PRODUCTION_LONGEST_SLEEP) if isinstance(parameters, SleepParameters) else []
    if used and not development:
        message = (
            f"{', '.join(used)}: test-only options (and sleeps over {PRODUCTION_LONGEST_SLEEP:g} s) are "
            "accepted in development only"
        )
        raise ApiError(
            422,
            "test_option_refused",
            message,
            [ErrorDetail(loc=["parameters", name], msg=message, type="test_option_refused") for name in used],
        )
    if isinstance(parameters, HttpRequestParameters):
        _check_call(parameters, outbound, tenant_id)
    return webhook


def _check_call(parameters: HttpRequestParameters, outbound: OutboundPolicy, tenant_id: str) -> None:
    """What can be told before the call: scheme, port, allow-list, an address spelled in the URL, the headers. The
    worker checks again, resolving the name, when it calls."""
    try:
        outbound.check(str(parameters.url), tenant_id, resolve=False)
    except OutboundRefused as refused:
        raise ApiError(
            422,
            "outbound_refused",
            f"the URL is refused: {refused}",
            [ErrorDetail(loc=["parameters", "url"], msg=str(refused), type="outbound_refused")],
        ) from None
    reserved = caller_headers(parameters.headers)
    if reserved:
        message = f"{', '.join(reserved)}: headers about the connection are set by the worker, not the job"
        raise ApiError(
            422,
            "reserved_header",
            message,
            [
                ErrorDetail(loc=["parameters", "headers", name], msg=message, type="reserved_header")
                for name in reserved
            ],
        )
    _check_no_literal_credentials(parameters)


def _check_no_literal_credentials(parameters: HttpRequestParameters) -> None:
    """A credential written into a job would be in the log, the read model and the pages for good: it must come
    as a reference to a tenant secret, which the worker fills in when it calls."""
    literal = literal_credentials(parameters.headers)
    if literal:
        message = (
            f'{", ".join(literal)}: a credential goes in as {{"secret": "<name>"}}, a tenant secret set with '
            "`zixly tenants secrets set`, never as its value"
        )
        raise ApiError(
            422,
            "literal_credential",
            message,
            [
                ErrorDetail(loc=["parameters", "headers", name], msg=message, type="literal_credential")
                for name in literal
            ],
        )
    in_url = credential_query_names(str(parameters.url))
    if in_url:
        message = (
            f"{', '.join(in_url)}: credentials do not go in a URL (it is logged and shown); send the credential "
            'in a header as {"secret": "<name>"}'
        )
        raise ApiError(
            422,
            "credential_in_url",
            message,
            [ErrorDetail(loc=["parameters", "url"], msg=message, type="credential_in_url")],
        )


def parse_trading_sweep(body: bytes) -> TradingSweepWebhook:
    return _parse(TradingSweepWebhook, body, "the sweep is not valid")


def parse_sweep_callback(body: bytes) -> SweepCallbackWebhook:
    return _parse(SweepCallbackWebhook, body, "the callback is not valid")


def _parse(model: type[M], body: bytes, message: str) -> M:
    """The body as ``model``, or ApiError(422) with one detail per field at fault."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise ApiError(422, "invalid_payload", message, validation_details(exc.errors(include_url=False))) from exc


def job_requested(webhook: GenericJobWebhook, tenant_id: str, idempotency_key: str | None) -> JobRequested:
    job_id = job_id_for_idempotency_key(tenant_id, idempotency_key) if idempotency_key else uuid.uuid4()
    return JobRequested(
        # Keyed requests get a derived event id, so that an append repeated after a crash is the same fact.
        event_id=derived_event_id(job_id, "requested") if idempotency_key else uuid.uuid4(),
        tenant_id=tenant_id,
        job_id=job_id,
        correlation_id=webhook.correlation_id or str(job_id),
        producer=PRODUCER,
        payload=JobRequestedPayload(
            job_type=webhook.job_type,
            parameters=webhook.parameters,
            idempotency_key=idempotency_key,
            metadata=webhook.metadata,
        ),
    )
