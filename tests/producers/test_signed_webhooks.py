import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from identity.tenants import TenantSecrets, new_secret
from kernel.settings import Settings
from producers.app import create_app
from producers.errors import ApiError
from producers.signatures import CACHED_TENANTS, WebhookAuthenticator
from tests.fakes import FakeJobReader, FakePublisher, FakeTenants, receiver_services

OLD, NEW = new_secret(), new_secret()


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
async def client(publisher: FakePublisher) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(allow_unregistered_tenants=False)
    tenants = FakeTenants({"acme": (NEW, OLD)})  # mid-rotation: both secrets work
    app = create_app(settings, receiver_services(settings, publisher, FakeJobReader(), tenants=tenants))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


def signed(
    body: dict[str, Any],
    secret: str = NEW,
    webhook_id: str = "msg_1",
    age: timedelta = timedelta(0),
    tenant: str = "acme",
) -> tuple[bytes, dict[str, str]]:
    data = json.dumps(body)
    timestamp = datetime.now(UTC) - age
    signature = Webhook(secret).sign(webhook_id, timestamp, data)
    headers = {
        "Content-Type": "application/json",
        "X-Tenant-ID": tenant,
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
    }
    return data.encode(), headers


async def post(client: httpx.AsyncClient, content: bytes, headers: dict[str, str]) -> httpx.Response:
    return await client.post("/webhook/generic-job", content=content, headers=headers)


async def test_a_correctly_signed_webhook_is_accepted(client: httpx.AsyncClient, publisher: FakePublisher) -> None:
    response = await post(client, *signed({"job_type": "noop"}))
    assert response.status_code == 202, response.text
    assert len(publisher.events) == 1


async def test_during_a_rotation_the_old_secret_still_works(client: httpx.AsyncClient) -> None:
    assert (await post(client, *signed({"job_type": "noop"}, secret=OLD))).status_code == 202


async def test_the_webhook_id_makes_a_redelivery_idempotent(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    first = await post(client, *signed({"job_type": "noop"}, webhook_id="msg_7"))
    again = await post(client, *signed({"job_type": "noop"}, webhook_id="msg_7"))
    assert first.json()["job_id"] == again.json()["job_id"]
    assert len(publisher.events) == 1


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp", "webhook-signature"])
async def test_a_missing_signature_header_is_named(client: httpx.AsyncClient, header: str) -> None:
    content, headers = signed({"job_type": "noop"})
    del headers[header]
    response = await post(client, content, headers)
    assert response.status_code == 401
    assert response.json()["error"] == "missing_signature_header"
    assert header in response.json()["message"]


async def test_a_signature_by_another_secret_is_refused(client: httpx.AsyncClient, publisher: FakePublisher) -> None:
    response = await post(client, *signed({"job_type": "noop"}, secret=new_secret()))
    assert (response.status_code, response.json()["error"]) == (401, "bad_signature")
    assert publisher.events == []


async def test_a_body_changed_after_signing_is_refused(client: httpx.AsyncClient) -> None:
    _, headers = signed({"job_type": "noop"})
    response = await post(client, json.dumps({"job_type": "sleep"}).encode(), headers)
    assert response.json()["error"] == "bad_signature"


async def test_a_stale_timestamp_is_refused(client: httpx.AsyncClient) -> None:
    response = await post(client, *signed({"job_type": "noop"}, age=timedelta(minutes=10)))
    assert (response.status_code, response.json()["error"]) == (401, "stale_timestamp")


async def test_an_unknown_tenant_is_refused_when_only_registered_ones_may_send(client: httpx.AsyncClient) -> None:
    response = await post(client, *signed({"job_type": "noop"}, tenant="stranger"))
    assert (response.status_code, response.json()["error"]) == (401, "unknown_tenant")


class FailingDirectory(FakeTenants):
    down = False

    async def secrets_of(self, tenant_id: str) -> TenantSecrets | None:
        if self.down:
            raise OSError("connection refused (fake)")
        return await super().secrets_of(tenant_id)


async def test_while_the_tenant_directory_is_down_the_last_answer_serves_and_an_unknown_one_gets_503() -> None:
    directory = FailingDirectory({"acme": (NEW,)})
    authenticator = WebhookAuthenticator(directory, allow_unknown_tenants=True, cache_seconds=0.0)
    content, headers = signed({"job_type": "noop"})
    assert await authenticator.authenticate("acme", headers, content) == "msg_1"
    directory.down = True
    assert await authenticator.authenticate("acme", headers, content) == "msg_1"
    with pytest.raises(ApiError) as refused:
        await authenticator.authenticate("never-seen", {}, b"{}")
    assert refused.value.status_code == 503


@pytest.mark.parametrize("signature", ["v1", "v1,not-base64!", "v1,a,b"])
async def test_a_malformed_signature_header_is_401_not_500(client: httpx.AsyncClient, signature: str) -> None:
    content, headers = signed({"job_type": "noop"})
    response = await post(client, content, headers | {"webhook-signature": signature})
    assert (response.status_code, response.json()["error"]) == (401, "malformed_signature")


async def test_a_body_that_is_not_utf8_is_401_not_500(client: httpx.AsyncClient) -> None:
    _, headers = signed({"job_type": "noop"})
    response = await post(client, b'{"job_type": "\xff"}', headers)
    assert (response.status_code, response.json()["error"]) == (401, "bad_signature")


async def test_the_secrets_cache_stays_bounded_whatever_tenants_are_named() -> None:
    authenticator = WebhookAuthenticator(FakeTenants({"acme": (NEW,)}), allow_unknown_tenants=True)
    for number in range(CACHED_TENANTS + 500):
        await authenticator.authenticate(f"made-up-{number}", {}, b"{}")
    assert len(authenticator._cache) == CACHED_TENANTS
