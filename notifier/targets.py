"""Who hears about a job: the targets its tenant's admin configured (``zixly tenants notify``), never a job's own
payload, which anyone able to submit a job could point at any address.

Slack targets are Slack's incoming webhooks (``https://hooks.slack.com/…``), or a host the operator named as
internal for the tenant; e-mail goes through the configured relay.
"""

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from kernel.outbound import InternalHost, OutboundPolicy, OutboundRefused

OUTCOMES = {
    "JobCompleted": "completed",
    "JobFailed": "failed",
    "JobDeadLettered": "dead_lettered",
    "JobCancelled": "cancelled",
}
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


SLACK_HOST = "hooks.slack.com"


def slack_policy(internal: tuple[InternalHost, ...]) -> OutboundPolicy:
    """Where Slack notifications may go: Slack's webhook host over HTTPS, or an internal host the operator named."""
    return OutboundPolicy((SLACK_HOST,), frozenset({443}), internal)


def slack_url_refusal(url: str, policy: OutboundPolicy, tenant: str) -> str | None:
    """Why this Slack webhook URL is refused for the tenant, or None (checked when it is configured and sent to)."""
    parsed = urlsplit(url)
    internal = any(entry.covers(parsed.hostname or "", parsed.port or 443, tenant) for entry in policy.internal_hosts)
    if not internal and (parsed.scheme != "https" or parsed.hostname != SLACK_HOST):
        return f"a Slack target is https://{SLACK_HOST}/…, not {parsed.scheme}://{parsed.hostname}"
    try:
        policy.check(url, tenant, resolve=False)
    except OutboundRefused as refused:
        return str(refused)
    return None


def targets_for(outcome_type: str, tenant: TenantNotifications | None) -> list[Target]:
    outcome = OUTCOMES.get(outcome_type)
    if outcome is None:
        return []
    tenant = tenant or TenantNotifications()
    on = _split(tenant.on) or set(DEFAULT_ON)
    if outcome not in on:
        return []
    slack = tenant.slack_webhook_url
    emails = _split(tenant.emails)
    found: list[Target] = [Target("slack", slack)] if slack else []
    found += [Target("email", address) for address in sorted(emails)]
    return found


def _split(value: str | None) -> set[str]:
    return {part.strip() for part in (value or "").split(",") if part.strip()}
