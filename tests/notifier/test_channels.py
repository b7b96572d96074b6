"""E-mail reaches the relay over TLS only: real SMTP servers (aiosmtpd) on loopback, with and without TLS."""

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from notifier.channels import Channels, DeliveryFailed, SmtpRelay
from notifier.targets import Target
from tests.local_smtp import LoopbackRelay, Mailbox
from tests.local_tls import server_tls


def only_zixly(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    good = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"zixly", b"s3cret")
    return AuthResult(success=good)


@dataclass
class Relay:
    mailbox: Mailbox
    port: int
    ca_file: Path


def relay(tmp_path: Path, **options: Any) -> Iterator[Relay]:
    context, ca_file = server_tls(tmp_path / "relay-tls")
    box = Mailbox()
    if options.pop("implicit_tls", False):
        options["ssl_context"] = context
    elif options.pop("starttls", True):
        options |= {"tls_context": context, "require_starttls": True}
    controller = LoopbackRelay(box, **options)
    controller.start()
    try:
        yield Relay(box, controller.port, ca_file)
    finally:
        controller.stop()


@pytest.fixture
def starttls_relay(tmp_path: Path) -> Iterator[Relay]:
    yield from relay(tmp_path, authenticator=only_zixly, auth_required=True)


@pytest.fixture
def plain_relay(tmp_path: Path) -> Iterator[Relay]:
    yield from relay(tmp_path, starttls=False)


@pytest.fixture
def implicit_tls_relay(tmp_path: Path) -> Iterator[Relay]:
    yield from relay(tmp_path, implicit_tls=True)


def send(smtp: SmtpRelay) -> None:
    async def run() -> None:
        async with httpx.AsyncClient() as http:
            channels = Channels(http, smtp, timeout_seconds=10)
            await channels.deliver(
                Target("email", "ops@example.com"),
                "Job completed",
                "noop finished",
                "acme",
                "0b7c1f9e-2f0a-5d51-9d55-7c4b8e0f1a23",
            )

    asyncio.run(run())


def test_mail_goes_over_starttls_after_a_login_the_relay_accepts(starttls_relay: Relay) -> None:
    send(
        SmtpRelay(
            "127.0.0.1", starttls_relay.port, "zixly@example.com", "starttls", starttls_relay.ca_file, "zixly", "s3cret"
        )
    )
    assert starttls_relay.mailbox.over_tls == [True]
    assert starttls_relay.mailbox.messages[0]["Subject"] == "Job completed"
    # The same notification delivered again carries the same Message-ID, which mail systems drop as a repeat.
    assert starttls_relay.mailbox.messages[0]["Message-ID"] == "<0b7c1f9e-2f0a-5d51-9d55-7c4b8e0f1a23@example.com>"


def test_a_relay_that_does_not_offer_starttls_gets_no_mail(plain_relay: Relay) -> None:
    with pytest.raises(DeliveryFailed, match="does not offer STARTTLS; nothing was sent"):
        send(SmtpRelay("127.0.0.1", plain_relay.port, "zixly@example.com", "starttls", plain_relay.ca_file))
    assert plain_relay.mailbox.messages == []


def test_a_relay_whose_certificate_is_not_trusted_gets_no_mail(starttls_relay: Relay, tmp_path: Path) -> None:
    _, another_ca = server_tls(tmp_path / "another")
    with pytest.raises(DeliveryFailed, match="CERTIFICATE_VERIFY_FAILED"):
        send(
            SmtpRelay("127.0.0.1", starttls_relay.port, "zixly@example.com", "starttls", another_ca, "zixly", "s3cret")
        )
    assert starttls_relay.mailbox.messages == []


def test_mail_goes_over_tls_from_the_first_byte_to_a_tls_relay(implicit_tls_relay: Relay) -> None:
    send(SmtpRelay("127.0.0.1", implicit_tls_relay.port, "zixly@example.com", "tls", implicit_tls_relay.ca_file))
    assert implicit_tls_relay.mailbox.over_tls == [True]


def test_a_relay_on_this_host_may_take_mail_without_tls_when_told(plain_relay: Relay) -> None:
    send(SmtpRelay("127.0.0.1", plain_relay.port, "zixly@example.com", "none"))
    assert plain_relay.mailbox.over_tls == [False]
