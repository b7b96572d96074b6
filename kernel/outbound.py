"""Outbound HTTP on behalf of tenants and integrations, which must never be turned inward.

One policy for every call the pipeline makes to an address it was given (``http.request`` jobs, the market-data
API, external backtest services, Slack notifications):

- the scheme is http or https, the port one of the allowed ones, the host on the allow-list;
- the host is resolved once, here, and every address it resolves to must be a public one: loopback, private,
  link-local (cloud metadata), shared, multicast and reserved ranges are refused, in every spelling (decimal,
  octal or hexadecimal IPv4, IPv4-mapped IPv6), unless the operator named that host as an internal one, for a
  tenant or for all;
- the request then goes to the address that was checked, with the name only in ``Host`` (and the TLS server
  name), so a second resolution (DNS rebinding) cannot send it elsewhere;
- no redirects; the caller sets no ``Host`` and no hop-by-hop header; the answer is read up to a size cap.

Refusals happen before any connection is attempted.
"""

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import httpx

from kernel.hosts import host_allowed
from kernel.settings import Settings

Resolver = Callable[[str, int], list[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Headers about the connection itself, which only the client that makes it may set.
RESERVED_HEADERS = frozenset(
    {
        "host",
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "proxy-authorization",
        "proxy-authenticate",
        "content-length",
    }
)
DEFAULT_PORTS = frozenset({80, 443})


class OutboundRefused(Exception):
    """A call the policy will not make, and why; nothing was connected to."""


def system_resolver(host: str, port: int) -> list[str]:
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})


def literal_address(host: str) -> IPAddress | None:
    """The address a host name spells, however it spells it; None for a name that must be resolved."""
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    try:  # inet_aton reads what URLs and resolvers accept: 2130706433, 0177.0.0.1, 0x7f.1, 127.1
        return ipaddress.IPv4Address(socket.inet_aton(bare))
    except OSError:
        return None


def public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class InternalHost:
    """A host the operator allows to be internal: ``host`` (any port) or ``host:port``, for one tenant or all."""

    host: str
    port: int | None = None
    tenant: str | None = None

    @classmethod
    def parse(cls, entry: str) -> "InternalHost":
        tenant, _, target = entry.rpartition("=")
        host, _, port = target.rpartition(":") if target.count(":") == 1 else (target, "", "")
        return cls(host.lower(), int(port) if port else None, tenant if tenant not in ("", "*") else None)

    def covers(self, host: str, port: int, tenant: str | None) -> bool:
        return (
            self.host == host.lower() and self.port in (None, port) and (self.tenant is None or self.tenant == tenant)
        )


@dataclass(frozen=True)
class Target:
    """A checked call: where it goes (``address``) and what it is called (``url``, for ``Host`` and TLS)."""

    url: httpx.URL
    address: str

    @property
    def connect_url(self) -> httpx.URL:
        return self.url.copy_with(host=self.address)


@dataclass(frozen=True)
class OutboundPolicy:
    allowed_hosts: tuple[str, ...]
    allowed_ports: frozenset[int] = DEFAULT_PORTS
    internal_hosts: tuple[InternalHost, ...] = ()
    resolver: Resolver = field(default=system_resolver, compare=False)

    @classmethod
    def only(cls, *urls: str | None) -> "OutboundPolicy":
        """A policy that reaches these operator-configured addresses and nothing else."""
        return cls((), frozenset()).allowing(*urls)

    def allowing(self, *urls: str | None) -> "OutboundPolicy":
        """The same policy with these operator-configured addresses allowed as they are (host, port, internal)."""
        extra = [httpx.URL(url) for url in urls if url]
        return OutboundPolicy(
            self.allowed_hosts + tuple(url.host for url in extra),
            self.allowed_ports | {url.port or _default_port(url.scheme) for url in extra},
            self.internal_hosts + tuple(InternalHost(url.host, url.port or _default_port(url.scheme)) for url in extra),
            self.resolver,
        )

    def check(self, url: str | httpx.URL, tenant: str | None = None, resolve: bool = True) -> Target | None:
        """The target to connect to; OutboundRefused with the reason otherwise, before any connection. Without
        ``resolve`` (a receiver checking a job's URL ahead of time) a name is not looked up, and None is returned
        for it: the worker checks again, resolving, when it calls."""
        try:
            parsed = httpx.URL(str(url))
        except httpx.InvalidURL as exc:
            raise OutboundRefused(f"not a URL: {exc}") from None
        if parsed.scheme not in ("http", "https"):
            raise OutboundRefused(f"scheme {parsed.scheme!r} is not http or https")
        host = parsed.host
        if not host:
            raise OutboundRefused("the URL has no host")
        if parsed.userinfo:
            raise OutboundRefused("credentials in the URL are refused; reference a tenant secret in a header")
        port = parsed.port or _default_port(parsed.scheme)
        internal = any(entry.covers(host, port, tenant) for entry in self.internal_hosts)
        if not internal and port not in self.allowed_ports:
            raise OutboundRefused(
                f"port {port} is not allowed (allowed: {', '.join(map(str, sorted(self.allowed_ports)))})"
            )
        if not internal and not host_allowed(host, list(self.allowed_hosts)):
            raise OutboundRefused(f"host {host!r} is not on the allow-list")
        literal = literal_address(host)
        if literal is not None:
            addresses = [literal]
        elif not resolve:
            return None
        else:
            try:
                addresses = [ipaddress.ip_address(a) for a in self.resolver(host, port)]
            except OSError as exc:
                raise OutboundRefused(f"host {host!r} does not resolve: {exc}") from None
        if not addresses:
            raise OutboundRefused(f"host {host!r} resolves to no address")
        if not internal:
            inward = [str(a) for a in addresses if not public(a)]
            if inward:
                raise OutboundRefused(f"host {host!r} resolves to {', '.join(inward)}, which is not a public address")
        return Target(parsed, str(addresses[0]))


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def caller_headers(headers: Iterable[str]) -> list[str]:
    """The names of headers a caller may not set (they belong to the connection)."""
    return [name for name in headers if name.lower() in RESERVED_HEADERS]


def internal_hosts(entries: Iterable[str]) -> tuple[InternalHost, ...]:
    return tuple(InternalHost.parse(entry.strip()) for entry in entries if entry.strip())


def policy_from_settings(
    settings: Settings, allowed_hosts: Iterable[str] | None = None, resolver: Resolver = system_resolver
) -> OutboundPolicy:
    """The deployment's policy; ``allowed_hosts`` instead of the http.request job's allow-list (another caller's)."""
    hosts = tuple(settings.http_allowed_hosts if allowed_hosts is None else allowed_hosts)
    internal = internal_hosts(settings.outbound_internal_hosts)
    return OutboundPolicy(hosts, frozenset(settings.outbound_ports), internal, resolver)


class GuardedTransport(httpx.AsyncBaseTransport):
    """Every request of a client made with it is checked by the policy and sent to the checked address.

    The tenant a request is made for travels in its ``zixly_tenant`` extension (internal hosts may be allowed per
    tenant)."""

    def __init__(self, policy: OutboundPolicy, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self._policy = policy
        self._inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        _aim(request, self._policy)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class GuardedSyncTransport(httpx.BaseTransport):
    def __init__(self, policy: OutboundPolicy, inner: httpx.BaseTransport | None = None) -> None:
        self._policy = policy
        self._inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        _aim(request, self._policy)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def _aim(request: httpx.Request, policy: OutboundPolicy) -> None:
    """Points the request at the checked address; its ``Host`` header (set when it was built) keeps the name."""
    target = policy.check(request.url, tenant=request.extensions.get("zixly_tenant"))
    assert target is not None
    if target.url.scheme == "https":
        request.extensions["sni_hostname"] = target.url.host
    request.url = target.connect_url


async def read_capped(response: httpx.Response, max_bytes: int) -> tuple[bytes, bool]:
    """At most ``max_bytes`` of a streamed answer (the rest is not downloaded), and whether there was more."""
    body = b""
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > max_bytes:
            return body[:max_bytes], True
    return body, False
