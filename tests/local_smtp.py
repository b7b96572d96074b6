"""The tests' SMTP relay handler (for aiosmtpd on loopback): every message it takes, and whether it came over TLS."""

import asyncio
import socket
from collections.abc import Awaitable
from dataclasses import dataclass, field
from email import message_from_bytes
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class Mailbox:
    messages: list[Any] = field(default_factory=list)
    over_tls: list[bool] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.messages.append(message_from_bytes(envelope.content))
        self.over_tls.append(server.transport.get_extra_info("ssl_object") is not None)
        return "250 OK"


class LoopbackRelay(Controller):
    """aiosmtpd's relay on a loopback port the system picks: the socket is bound before the server starts, so the
    port is known without racing anyone for a free one."""

    def __init__(self, handler: Any, **options: Any) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        super().__init__(handler, hostname="127.0.0.1", port=self._socket.getsockname()[1], **options)

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        return self.loop.create_server(self._factory_invoker, sock=self._socket, ssl=self.ssl_context)
