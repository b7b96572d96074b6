"""Delivering one notification: a Slack incoming webhook, or an e-mail over SMTP."""

import asyncio
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import httpx

from kernel.outbound import OutboundRefused
from notifier.targets import Target
from schemas.identifiers import IDEMPOTENCY_KEY_HEADER


class DeliveryFailed(Exception):
    pass


def redacted(target: Target) -> str:
    """A Slack webhook URL carries its secret in the path: keep only the host."""
    if target.channel == "slack":
        parts = urlsplit(target.address)
        return f"{parts.scheme}://{parts.netloc}/…"
    return target.address


@dataclass(frozen=True)
class SmtpRelay:
    host: str
    port: int
    sender: str
    security: Literal["starttls", "tls", "none"] = "starttls"
    ca_file: Path | None = None
    username: str | None = None
    password: str | None = None

    def tls_context(self) -> ssl.SSLContext:
        """The relay's certificate and name are checked (TLS 1.2 at least): a relay that cannot prove itself gets
        no mail, rather than mail in the clear."""
        context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context


class Channels:
    def __init__(self, http: httpx.AsyncClient, relay: SmtpRelay, timeout_seconds: float) -> None:
        self._http = http
        self._relay = relay
        self._timeout = timeout_seconds

    async def deliver(self, target: Target, subject: str, text: str, tenant: str, key: str) -> None:
        """``key`` is the same for every delivery of one notification (schemas.identifiers.side_effect_key): the
        Slack request's ``Idempotency-Key`` and the mail's ``Message-ID``, so a repeat can be recognised."""
        if target.channel == "slack":
            await self._slack(target.address, f"*{subject}*\n{text}", tenant, key)
        else:
            await asyncio.to_thread(self._email, target.address, subject, text, key)

    async def _slack(self, url: str, text: str, tenant: str, key: str) -> None:
        try:
            response = await self._http.post(
                url,
                json={"text": text},
                headers={IDEMPOTENCY_KEY_HEADER: key},
                timeout=self._timeout,
                extensions={"zixly_tenant": tenant},
            )
        except OutboundRefused as refused:
            raise DeliveryFailed(f"the target is refused: {refused}") from None
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{type(exc).__name__}") from exc
        if not response.is_success:
            # What the target said is not kept: it is shown to the tenant, and the target may not be theirs.
            raise DeliveryFailed(f"Slack answered {response.status_code}")

    def _email(self, address: str, subject: str, text: str, key: str) -> None:
        relay = self._relay
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = relay.sender, address, subject
        message["Message-ID"] = f"<{key}@{relay.sender.rpartition('@')[2] or 'zixly'}>"
        message.set_content(text)
        try:
            with self._connect() as smtp:
                if relay.username and relay.password:
                    smtp.login(relay.username, relay.password)
                smtp.send_message(message)
        except smtplib.SMTPNotSupportedError:
            raise DeliveryFailed(
                f"the relay {relay.host}:{relay.port} does not offer STARTTLS; nothing was sent"
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc

    def _connect(self) -> smtplib.SMTP:
        relay = self._relay
        if relay.security == "tls":
            return smtplib.SMTP_SSL(relay.host, relay.port, timeout=self._timeout, context=relay.tls_context())
        smtp = smtplib.SMTP(relay.host, relay.port, timeout=self._timeout)
        if relay.security == "starttls":
            try:
                smtp.starttls(context=relay.tls_context())
            except BaseException:
                smtp.close()
                raise
        return smtp
