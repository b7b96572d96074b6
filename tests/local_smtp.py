"""The tests' SMTP relay handler (for aiosmtpd on loopback): every message it takes, and whether it came over TLS."""

from dataclasses import dataclass, field
from email import message_from_bytes
from typing import Any


@dataclass
class Mailbox:
    messages: list[Any] = field(default_factory=list)
    over_tls: list[bool] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.messages.append(message_from_bytes(envelope.content))
        self.over_tls.append(server.transport.get_extra_info("ssl_object") is not None)
        return "250 OK"
