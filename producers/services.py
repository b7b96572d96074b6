"""What the receiver's routes depend on, built once per process in the app's lifespan."""

from dataclasses import dataclass, field

from identity.audit import AuditTrail
from kernel.outbound import OutboundPolicy
from kernel.publisher import EventPublisher
from kernel.settings import Settings
from market_data.providers import MarketData
from producers.acceptance import JobAcceptance
from producers.callers import ReadCallers
from producers.health import Probe
from producers.job_status import JobReader
from producers.limits import InFlightQuota, RateLimiter
from producers.signatures import WebhookAuthenticator


@dataclass
class ReceiverServices:
    settings: Settings
    publisher: EventPublisher
    jobs: JobReader
    market_data: MarketData
    acceptance: JobAcceptance
    authenticator: WebhookAuthenticator
    callers: ReadCallers
    audit: AuditTrail
    outbound: OutboundPolicy
    rates: RateLimiter
    quota: InFlightQuota
    probes: dict[str, Probe] = field(default_factory=dict)
