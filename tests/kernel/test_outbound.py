"""The outbound policy refuses every inward address, however spelled or resolved, before any connection; names are
mapped by a test resolver, so no test here sends a packet anywhere but to its own loopback server."""

from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from kernel.outbound import GuardedTransport, InternalHost, OutboundPolicy, OutboundRefused
from schemas.jobs import HttpRequestParameters
from tests.local_http import local_http_server

NAMES = {
    "public.example": ["93.184.216.34"],
    "loopback.example": ["127.0.0.1"],
    "metadata.example": ["169.254.169.254"],
    "intranet.example": ["10.20.30.40"],
    "half.example": ["93.184.216.34", "192.168.1.10"],  # one inward address is enough to refuse
    "v6-loopback.example": ["::1"],
    "mapped.example": ["::ffff:10.0.0.1"],
}
PROBES = [
    "http://127.0.0.1/",
    "http://localhost/",
    "http://[::1]/",
    "http://0.0.0.0/",
    "http://169.254.169.254/latest/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.0.1/",
    "http://2130706433/",
    "http://0177.0.0.1/",
    "http://0x7f.1/",
    "http://127.1/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[fd00::1]/",
    "http://[fe80::1]/",
    "http://224.0.0.1/",
    "http://100.64.0.1/",
    "http://loopback.example/",
    "http://metadata.example/",
    "http://intranet.example/",
    "http://half.example/",
    "http://v6-loopback.example/",
    "http://mapped.example/",
]


def resolver(host: str, port: int) -> list[str]:
    if host == "localhost":
        return ["127.0.0.1", "::1"]
    if host not in NAMES:
        raise OSError(f"{host} does not resolve (test resolver)")
    return NAMES[host]


def policy(*internal: InternalHost, ports: frozenset[int] = frozenset({80, 443})) -> OutboundPolicy:
    # Every probe's host is on the allow-list, so that what refuses it is the address, not the list.
    hosts = (*(urlsplit(url).hostname or "" for url in PROBES), "public.example")
    return OutboundPolicy(hosts, ports, internal, resolver)


@pytest.mark.parametrize("url", PROBES)
def test_an_inward_address_is_refused_however_it_is_spelled_or_resolved(url: str) -> None:
    # A spelling the URL parser will not read (an octal quad) is refused as no URL at all.
    with pytest.raises(OutboundRefused, match=r"not a public address|not a URL"):
        policy().check(url, "acme")


@pytest.mark.parametrize("spelled", ["2130706433", "0177.0.0.1", "0x7f.1", "127.1", "0x7f000001"])
def test_the_job_contract_reads_every_ipv4_spelling_as_the_address_it_is(spelled: str) -> None:
    """Pydantic's URL type normalises as browsers do, so the worker's check sees 127.0.0.1 whatever was sent."""
    parameters = HttpRequestParameters.model_validate({"url": f"http://{spelled}:8000/health"})
    assert parameters.url.host == "127.0.0.1"
    with pytest.raises(OutboundRefused, match="not a public address"):
        OutboundPolicy(("127.0.0.1",), frozenset({8000}), resolver=resolver).check(str(parameters.url), "acme")


def test_a_public_host_is_called_at_the_address_that_was_checked() -> None:
    target = policy().check("https://public.example/hook?x=1", "acme")
    assert target is not None
    assert (target.address, str(target.connect_url)) == ("93.184.216.34", "https://93.184.216.34/hook?x=1")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://public.example:8080/", "port 8080 is not allowed"),
        ("ftp://public.example/", "scheme 'ftp'"),
        ("http://user:secret@public.example/", "credentials in the URL"),
        ("http://elsewhere.example/", "allow-list"),
        ("http://unknown.example/", "allow-list"),
    ],
)
def test_ports_schemes_credentials_and_hosts_off_the_list_are_refused(url: str, reason: str) -> None:
    with pytest.raises(OutboundRefused, match=reason):
        policy().check(url, "acme")


def test_an_internal_host_the_operator_named_is_reachable_for_its_tenant_only() -> None:
    named = policy(InternalHost("intranet.example", 8443, "acme"))
    assert named.check("https://intranet.example:8443/crm", "acme") is not None
    with pytest.raises(OutboundRefused):
        named.check("https://intranet.example:8443/crm", "globex")
    with pytest.raises(OutboundRefused):
        named.check("https://intranet.example:9443/crm", "acme")


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("10.0.0.5", InternalHost("10.0.0.5")),
        ("crm.internal:8443", InternalHost("crm.internal", 8443)),
        ("acme=crm.internal:8443", InternalHost("crm.internal", 8443, "acme")),
        ("*=127.0.0.1", InternalHost("127.0.0.1")),
    ],
)
def test_internal_hosts_are_written_host_port_and_tenant(entry: str, expected: InternalHost) -> None:
    assert InternalHost.parse(entry) == expected


def test_the_receiver_checks_spelled_addresses_without_resolving_names() -> None:
    def no_lookups(host: str, port: int) -> list[str]:
        raise AssertionError("resolved")

    ahead = OutboundPolicy(("public.example", "2130706433"), resolver=no_lookups)
    assert ahead.check("http://public.example/", "acme", resolve=False) is None
    with pytest.raises(OutboundRefused):
        ahead.check("http://2130706433/", "acme", resolve=False)


@pytest.fixture
def server() -> Iterator[str]:
    with local_http_server() as url:
        yield url


async def test_a_guarded_client_reaches_a_named_internal_server_and_nothing_else(server: str) -> None:
    port = httpx.URL(server).port
    assert port is not None
    allowed = OutboundPolicy(("127.0.0.1",), frozenset({port}), (InternalHost("127.0.0.1", port, "acme"),), resolver)
    async with httpx.AsyncClient(transport=GuardedTransport(allowed)) as client:
        reached = await client.get(f"{server}/path", extensions={"zixly_tenant": "acme"})
        assert reached.json()["path"] == "/path"
        with pytest.raises(OutboundRefused):
            await client.get(f"{server}/path", extensions={"zixly_tenant": "globex"})


async def test_a_refused_call_never_reaches_the_network_and_a_checked_one_keeps_its_name() -> None:
    seen: list[httpx.Request] = []
    inner = httpx.MockTransport(lambda request: seen.append(request) or httpx.Response(204))
    async with httpx.AsyncClient(transport=GuardedTransport(policy(), inner=inner)) as client:
        with pytest.raises(OutboundRefused):
            await client.get("http://2130706433/", extensions={"zixly_tenant": "acme"})
        assert seen == []
        await client.get("https://public.example/hook", extensions={"zixly_tenant": "acme"})
    assert (seen[0].url.host, seen[0].headers["host"]) == ("93.184.216.34", "public.example")
    assert seen[0].extensions["sni_hostname"] == "public.example"
