"""Delivering one notification: a Slack incoming webhook, or an e-mail over SMTP."""

import asyncio
import smtplib
from email.message import EmailMessage
from urllib.parse import urlsplit

import httpx

from kernel.outbound import OutboundRefused
from processors.notifications.targets import Target


class DeliveryFailed(Exception):
    pass


def redacted(target: Target) -> str:
    """A Slack webhook URL carries its secret in the path: keep only the host."""
    if target.channel == "slack":
        parts = urlsplit(target.address)
        return f"{parts.scheme}://{parts.netloc}/…"
    return target.address


class Channels:
    def __init__(
        self, http: httpx.AsyncClient, smtp_host: str, smtp_port: int, sender: str, timeout_seconds: float
    ) -> None:
        self._http = http
        self._smtp_host = smtp_host
        self._smtp_port = smtp_port
        self._sender = sender
        self._timeout = timeout_seconds

    async def deliver(self, target: Target, subject: str, text: str, tenant: str) -> None:
        if target.channel == "slack":
            await self._slack(target.address, f"*{subject}*\n{text}", tenant)
        else:
            await asyncio.to_thread(self._email, target.address, subject, text)

    async def _slack(self, url: str, text: str, tenant: str) -> None:
        try:
            response = await self._http.post(
                url, json={"text": text}, timeout=self._timeout, extensions={"zixly_tenant": tenant}
            )
        except OutboundRefused as refused:
            raise DeliveryFailed(f"the target is refused: {refused}") from None
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{type(exc).__name__}") from exc
        if not response.is_success:
            # What the target said is not kept: it is shown to the tenant, and the target may not be theirs.
            raise DeliveryFailed(f"Slack answered {response.status_code}")

    def _email(self, address: str, subject: str, text: str) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self._sender, address, subject
        message.set_content(text)
        try:
            with smtplib.SMTP(self._smtp_host, self._smtp_port, timeout=self._timeout) as smtp:
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
