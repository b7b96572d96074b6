"""Small fakes of the project's own ports, for unit tests."""

import uuid
from dataclasses import dataclass, field

from kernel.market_data.providers import MarketData
from kernel.publisher import Appended, LogUnavailable
from kernel.settings import Settings
from schemas.events import Event
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

    async def get(self, job_id: uuid.UUID, tenant_id: str) -> JobStatusView | None:
        return self.jobs.get((job_id, tenant_id))


def market_data(settings: Settings) -> MarketData:
    """The real providers over local sources only (bundled, synthetic, the settings' files folder)."""
    return MarketData(files_folder=settings.market_data_folder, http_base_url=settings.market_data_url)
