"""Small fakes of the project's own ports, for unit tests."""

import uuid
from dataclasses import dataclass, field, replace

from identity.api_tokens import TokenRefused
from identity.audit import AuditEntry
from identity.tenants import TenantLimits, TenantSecrets
from kernel.dead_letters import Origin
from kernel.outbound import policy_from_settings
from kernel.publisher import Appended, EventPublisher, LogUnavailable
from kernel.settings import Settings
from market_data.providers import MarketData
from producers.acceptance import JobAcceptance
from producers.callers import ReadCallers
from producers.limits import InFlightQuota, RateLimiter
from producers.receipts import Receipt
from producers.services import ReceiverServices
from producers.signatures import WebhookAuthenticator
from schemas.access import Principal
from schemas.events import Event
from schemas.retries import RetryRequest
from schemas.webhooks import JobStatusView


@dataclass
class FakePublisher:
    events: list[Event] = field(default_factory=list)
    unavailable: bool = False

    async def publish(self, event: Event) -> Appended:
        if self.unavailable:
            raise LogUnavailable("broker down (fake)")
        self.events.append(event)
        return Appended(topic="fake", partition=0, offset=len(self.events) - 1)

    def types(self) -> list[str]:
        return [event.event_type for event in self.events]


@dataclass
class FakeJobReader:
    jobs: dict[tuple[uuid.UUID, str], JobStatusView] = field(default_factory=dict)

    projected: dict[int, int] = field(default_factory=dict)

    async def get(self, job_id: uuid.UUID, tenant_id: str) -> JobStatusView | None:
        return self.jobs.get((job_id, tenant_id))

    async def projected_to(self, partition: int) -> int:
        return self.projected.get(partition, 0)

    async def in_flight(self, tenant_id: str) -> int:
        unfinished = {"QUEUED", "RUNNING", "RETRYING"}
        return sum(1 for (_, tenant), job in self.jobs.items() if tenant == tenant_id and job.status in unfinished)


def market_data(settings: Settings) -> MarketData:
    """The real providers over local sources only (bundled, synthetic, the settings' files folder)."""
    return MarketData(files_folder=settings.market_data_folder, http_base_url=settings.market_data_url)


@dataclass
class FakeReceiptStore:
    receipts: dict[tuple[str, str], Receipt] = field(default_factory=dict)

    async def claim(self, tenant_id: str, key: str, receipt: Receipt) -> Receipt | None:
        existing = self.receipts.get((tenant_id, key))
        if existing is None:
            self.receipts[(tenant_id, key)] = receipt
        return existing

    async def get(self, tenant_id: str, key: str) -> Receipt | None:
        return self.receipts.get((tenant_id, key))

    async def mark_appended(self, tenant_id: str, key: str, partition: int, offset: int) -> None:
        self.receipts[(tenant_id, key)] = replace(
            self.receipts[(tenant_id, key)], state="appended", log_partition=partition, log_offset=offset
        )

    async def release(self, tenant_id: str, key: str) -> None:
        if (receipt := self.receipts.get((tenant_id, key))) and not receipt.appended:
            del self.receipts[(tenant_id, key)]


def no_resolution(host: str, port: int) -> list[str]:
    raise AssertionError(f"a unit test resolved {host}: the receiver must not look names up")


def receiver_services(
    settings: Settings,
    publisher: EventPublisher,
    jobs: FakeJobReader,
    receipts: FakeReceiptStore | None = None,
    tenants: "FakeTenants | None" = None,
    tokens: "FakeTokens | None" = None,
    audit: "FakeAudit | None" = None,
) -> ReceiverServices:
    tenants = tenants or FakeTenants()
    return ReceiverServices(
        settings=settings,
        publisher=publisher,
        jobs=jobs,
        market_data=market_data(settings),
        acceptance=JobAcceptance(publisher, receipts or FakeReceiptStore(), settings.publish_timeout_seconds),
        authenticator=WebhookAuthenticator(tenants, settings.accepts_unregistered_tenants, 0.0),
        callers=ReadCallers(tokens or FakeTokens(), tenants, settings.accepts_unregistered_tenants),
        audit=audit or FakeAudit(),
        outbound=policy_from_settings(settings, resolver=no_resolution),
        rates=RateLimiter(),
        quota=InFlightQuota(jobs.in_flight, refresh_seconds=0.0),
    )


@dataclass
class FakeRetryScheduler:
    scheduled: list[RetryRequest] = field(default_factory=list)

    async def schedule(self, retry: RetryRequest) -> None:
        self.scheduled.append(retry)


@dataclass
class FakeDeadLetters:
    topic: str = "dead-letters"
    letters: list[tuple[Origin, str, str, str]] = field(default_factory=list)

    async def send(self, origin: Origin, error_type: str, error: str, stage: str) -> None:
        self.letters.append((origin, error_type, error, stage))


@dataclass
class FakeTenants:
    secrets: dict[str, tuple[str, ...]] = field(default_factory=dict)
    limits: dict[str, TenantLimits] = field(default_factory=dict)

    async def secrets_of(self, tenant_id: str) -> TenantSecrets | None:
        found = self.secrets.get(tenant_id)
        limits = self.limits.get(tenant_id, TenantLimits())
        return None if found is None else TenantSecrets(tenant_id, found, limits)

    async def exists(self, tenant_id: str) -> bool:
        return tenant_id in self.secrets


@dataclass
class FakeAudit:
    entries: list[AuditEntry] = field(default_factory=list)

    async def record(self, entry: AuditEntry) -> None:
        self.entries.append(entry)


@dataclass
class FakeTokens:
    principals: dict[str, Principal] = field(default_factory=dict)

    async def authenticate(self, token: str) -> Principal:
        try:
            return self.principals[token]
        except KeyError:
            raise TokenRefused("the token is not valid") from None
