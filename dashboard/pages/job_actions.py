"""An operator's actions on one job: ask it to stop, run it again as a new job, or re-run a completed sweep and
check that it reproduces.

Each is a fact appended to the log, as the receiver appends a tenant's cancel: the dashboard asks, the workers
act. They are the only writes the dashboard makes to the log, each audited; the read model shows their effect
when the projector has applied it. A re-run's page compares it with its original on request (the same check as
``zixly sweeps rerun``).
"""

import asyncio
import uuid
from typing import Any

import flask
from dash import Dash, Input, Output, State, ctx, dcc, html

from dashboard.authorization import scope_of, viewer
from dashboard.page_data import PageData
from identity.audit import AuditEntry, record_sync
from kernel.publisher import append_event
from kernel.settings import Settings
from read_model.sweep_reruns import NotASweep, rerun_request
from schemas.access import Permission, Principal
from schemas.events import (
    Event,
    JobCancelRequested,
    JobCancelRequestedPayload,
    JobRequested,
    JobRequestedPayload,
    derived_event_id,
)
from schemas.job_status import TERMINAL_STATUSES, JobStatus
from schemas.sweeps import SWEEP_JOB_TYPE

PERMISSION = Permission.CANCEL_JOBS
RESUBMITTABLE = frozenset({JobStatus.FAILED, JobStatus.DEAD_LETTERED, JobStatus.CANCELLED})
PRODUCER = "dashboard"


def card(principal: Principal) -> html.Div | None:
    """The actions, for a caller whose role allows them; None otherwise (the page shows nothing to click)."""
    if not principal.may(PERMISSION):
        return None
    return html.Div(
        [
            html.H2("Actions"),
            dcc.Input(id="job-action-reason", type="text", placeholder="why (recorded in the log)", maxLength=500),
            html.Button("Cancel job", id="job-cancel", className="button"),
            html.Button("Resubmit as a new job", id="job-resubmit", className="button"),
            html.Button("Re-run sweep", id="job-rerun", className="button", title="a completed sweep, to reproduce"),
            html.Button("Compare with the original", id="job-compare", className="button", title="a re-run sweep"),
            # One id per page view: a double click resubmits once (the same job id, the same event).
            dcc.Store(id="job-action-nonce", data=uuid.uuid4().hex),
            html.P(id="job-action-result", role="status"),
            html.P(id="job-compare-result", role="status"),
        ],
        className="card",
    )


def cancel_request(job: dict[str, Any], caller: Principal, reason: str | None) -> JobCancelRequested:
    job_id: uuid.UUID = job["id"]
    return JobCancelRequested(
        event_id=derived_event_id(job_id, "cancel-requested"),
        tenant_id=job["tenant_id"],
        job_id=job_id,
        correlation_id=job["correlation_id"],
        producer=PRODUCER,
        payload=JobCancelRequestedPayload(reason=reason, requested_by=caller.actor[:200]),
    )


def resubmission(job: dict[str, Any], caller: Principal, nonce: str) -> JobRequested:
    new_job_id = uuid.uuid5(job["id"], f"resubmitted:{nonce}")
    return JobRequested(
        event_id=derived_event_id(new_job_id, "requested"),
        tenant_id=job["tenant_id"],
        job_id=new_job_id,
        correlation_id=job["correlation_id"],
        producer=PRODUCER,
        payload=JobRequestedPayload(
            job_type=job["job_type"],
            parameters=job["parameters"],
            metadata={**job["metadata"], "resubmitted_from": str(job["id"]), "resubmitted_by": caller.actor[:200]},
        ),
    )


def append(settings: Settings, event: Event) -> None:
    """Appends the event and returns once the broker has acknowledged it (acks=all, idempotent producer)."""
    asyncio.run(append_event(settings, event))


def register(app: Dash, data: PageData) -> None:
    @app.callback(
        Output("job-action-result", "children"),
        Input("job-cancel", "n_clicks"),
        Input("job-resubmit", "n_clicks"),
        Input("job-rerun", "n_clicks"),
        State("job-id", "data"),
        State("job-action-reason", "value"),
        State("job-action-nonce", "data"),
        prevent_initial_call=True,
    )
    def act(
        cancel: int | None, resubmit: int | None, rerun: int | None, job_id: str, reason: str | None, nonce: str
    ) -> Any:
        caller = viewer()
        job = data.job_row(scope_of(caller), uuid.UUID(job_id))
        if job is None:
            return "no such job"
        status = JobStatus(job["status"])
        asked = {"job-cancel": "job.cancel", "job-resubmit": "job.resubmit", "job-rerun": "sweep.rerun"}[
            str(ctx.triggered_id)
        ]
        if asked == "job.cancel" and status in TERMINAL_STATUSES:
            return f"the job is already {status}; cancelling changes nothing"
        if asked == "job.resubmit" and status not in RESUBMITTABLE:
            return f"only a failed, dead-lettered or cancelled job is resubmitted, not a {status} one"
        if asked == "sweep.rerun" and (job["job_type"] != SWEEP_JOB_TYPE or status is not JobStatus.COMPLETED):
            return f"only a completed {SWEEP_JOB_TYPE} job is re-run to check it, not a {status} {job['job_type']}"
        event: Event
        if asked == "job.cancel":
            event = cancel_request(job, caller, reason)
        elif asked == "job.resubmit":
            event = resubmission(job, caller, nonce)
        else:
            try:
                event = rerun_request(data.sweep_inputs(scope_of(caller), job["id"]), nonce)
            except NotASweep as exc:
                return str(exc)
        try:
            append(data.settings, event)
        except Exception as exc:  # the log did not take it: say so, record nothing as done
            record_sync(
                data.engine,
                AuditEntry(
                    caller.actor,
                    asked,
                    job["tenant_id"],
                    job_id,
                    "failed",
                    flask.request.remote_addr,
                    {"error": repr(exc)[:300]},
                ),
            )
            return f"the log did not acknowledge the request; nothing was done ({type(exc).__name__})"
        detail = {"reason": reason} | ({"new_job_id": str(event.job_id)} if asked != "job.cancel" else {})
        record_sync(
            data.engine,
            AuditEntry(caller.actor, asked, job["tenant_id"], job_id, "ok", flask.request.remote_addr, detail),
        )
        if asked == "job.cancel":
            return "cancel requested: the job stops at its next checkpoint"
        if asked == "sweep.rerun":
            return dcc.Link(f"re-running as job {event.job_id}", href=f"/jobs/{event.job_id}", id="job-rerun-link")
        return dcc.Link(f"resubmitted as job {event.job_id}", href=f"/jobs/{event.job_id}", id="job-resubmitted")

    @app.callback(
        Output("job-compare-result", "children"),
        Input("job-compare", "n_clicks"),
        State("job-id", "data"),
        prevent_initial_call=True,
    )
    def compare(_clicks: int | None, job_id: str) -> str:
        """A re-run against its original: the inputs that changed, and whether every result row is bit-identical."""
        scope = scope_of(viewer())
        job = data.job_row(scope, uuid.UUID(job_id))
        original = (job or {}).get("metadata", {}).get("rerun_of")
        if job is None or original is None:
            return "this job is not a re-run of a sweep"
        if JobStatus(job["status"]) is not JobStatus.COMPLETED:
            return f"the re-run is {job['status']}; compare it once it has completed"
        try:
            return data.sweep_rerun_report(scope, uuid.UUID(original), job["id"]).verdict
        except NotASweep as exc:
            return str(exc)
