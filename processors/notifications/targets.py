"""Who hears about a job: its own labels first, then its tenant's settings.

A job chooses with metadata labels ``notify_slack_webhook_url``, ``notify_email`` (comma-separated) and
``notify_on`` (comma-separated outcomes: completed, failed, dead_lettered, cancelled); a tenant with the same
settings in the tenants table (``zixly tenants notify``). A job's label replaces its tenant's for that channel.
"""

from dataclasses import dataclass
from typing import Literal

OUTCOMES = {"JobCompleted": "completed", "JobFailed": "failed", "JobDeadLettered": "dead_lettered",
            "JobCancelled": "cancelled"}  # fmt: skip
DEFAULT_ON = frozenset({"failed", "dead_lettered"})


@dataclass(frozen=True)
class Target:
    channel: Literal["slack", "email"]
    address: str


@dataclass(frozen=True)
class TenantNotifications:
    slack_webhook_url: str | None = None
    emails: str | None = None
    on: str | None = None


def targets_for(outcome_type: str, metadata: dict[str, str], tenant: TenantNotifications | None) -> list[Target]:
    outcome = OUTCOMES.get(outcome_type)
    if outcome is None:
        return []
    tenant = tenant or TenantNotifications()
    on = _split(metadata.get("notify_on") or tenant.on) or set(DEFAULT_ON)
    if outcome not in on:
        return []
    slack = metadata.get("notify_slack_webhook_url") or tenant.slack_webhook_url
    emails = _split(metadata.get("notify_email") or tenant.emails)
    found: list[Target] = [Target("slack", slack)] if slack else []
    found += [Target("email", address) for address in sorted(emails)]
    return found


def _split(value: str | None) -> set[str]:
    return {part.strip() for part in (value or "").split(",") if part.strip()}
