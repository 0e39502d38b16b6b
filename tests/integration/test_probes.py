"""TCP, DNS and TLS probes against real servers on 127.0.0.1, alone and as flow steps run
by the Runner."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
import trustme
from certs import write_self_signed

import synth
from synth.checks import api
from synth.checks.probe_checks import dns_check, tcp_check, tls_check
from synth.config import Settings
from synth.model import CheckSpec, FailureType, RunRequest, RunResult, Status
from synth.probes.dns import probe_dns
from synth.probes.errors import ProbeError
from synth.probes.tcp import probe_tcp
from synth.probes.tls import probe_tls, verifying_context
from synth.redact import MASK
from synth.runner import Runner

HOST = "127.0.0.1"


# -- servers -------------------------------------------------------------------------------


@pytest.fixture
async def tcp_port() -> AsyncIterator[int]:
    """A listening TCP server that closes every connection."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(handle, HOST, 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on: bound, then released."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


ZONE: dict[tuple[str, str], list[str]] = {
    ("shop.test.", "A"): ["127.0.0.1", "127.0.0.2"],
    ("shop.test.", "MX"): ["10 mail.shop.test.", "20 backup.shop.test."],
    ("shop.test.", "TXT"): ['"v=spf1 -all"'],
    ("www.shop.test.", "CNAME"): ["shop.test."],
}
SERVFAIL_NAMES = {"broken.test."}
SILENT_NAMES = {"silent.test."}


class ZoneServer(asyncio.DatagramProtocol):
    """A tiny authoritative server for ZONE: NXDOMAIN for unknown names, an empty answer
    for a known name without that type, SERVFAIL or silence for the special names."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.queries = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.queries += 1
        query = dns.message.from_wire(data)
        question = query.question[0]
        name = question.name.to_text().lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        if name in SILENT_NAMES:
            return
        response = dns.message.make_response(query)
        known = {n for n, _ in ZONE}
        if name in SERVFAIL_NAMES:
            response.set_rcode(dns.rcode.SERVFAIL)
        elif name not in known:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif records := ZONE.get((name, rdtype)):
            response.answer.append(
                dns.rrset.from_text_list(question.name, 60, "IN", rdtype, records)
            )
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


@pytest.fixture
async def dns_port() -> AsyncIterator[int]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(ZoneServer, local_addr=(HOST, 0))
    try:
        yield transport.get_extra_info("sockname")[1]
    finally:
        transport.close()


@dataclass
class Certs:
    ca: trustme.CA
    ca_file: Path
    tmp: Path
    # When the test started (not when the module was imported: a long suite runs it
    # many minutes later, and validity is measured from here).
    now: dt.datetime

    def leaf(self, *names: str, days: float = 90, valid_from_days: float = -1) -> trustme.LeafCert:
        return self.ca.issue_cert(
            *names,
            not_before=self.now + dt.timedelta(days=valid_from_days),
            not_after=self.now + dt.timedelta(days=days),
        )


@pytest.fixture
def certs(tmp_path: Path) -> Certs:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return Certs(ca=ca, ca_file=ca_file, tmp=tmp_path, now=dt.datetime.now(dt.UTC))


ServeTls = Callable[[Callable[[ssl.SSLContext], None]], Awaitable[int]]


@pytest.fixture
async def serve_tls() -> AsyncIterator[ServeTls]:
    """Start TLS servers on 127.0.0.1 with a certificate set up by the test."""
    servers: list[asyncio.Server] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async def start(configure: Callable[[ssl.SSLContext], None]) -> int:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        configure(context)
        server = await asyncio.start_server(handle, HOST, 0, ssl=context)
        servers.append(server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def self_signed(tmp: Path, name: str, *, days: float = 90) -> Callable[[ssl.SSLContext], None]:
    """A server configuration with a certificate signed by its own key, for `name` only."""
    cert_file, key_file = write_self_signed(tmp, name, days=days, with_loopback=False)

    def configure(context: ssl.SSLContext) -> None:
        context.load_cert_chain(cert_file, key_file)

    return configure


# -- TCP -----------------------------------------------------------------------------------


async def test_tcp_connects(tcp_port: int) -> None:
    result = await probe_tcp(HOST, tcp_port, timeout_s=2)
    assert (result.host, result.port, result.address) == (HOST, tcp_port, HOST)
    assert result.dns_s is None  # an IP address needs no lookup
    assert 0 <= result.connect_s < 2


async def test_tcp_refused(closed_port: int) -> None:
    with pytest.raises(ProbeError) as caught:
        await probe_tcp(HOST, closed_port, timeout_s=2)
    assert caught.value.failure_type is FailureType.CONNECT
    assert f"{HOST}:{closed_port}" in caught.value.message
    assert "refused" in caught.value.message


async def test_tcp_unresolvable_name() -> None:
    with pytest.raises(ProbeError) as caught:
        await probe_tcp("no-such-host.invalid", 80, timeout_s=5)
    assert caught.value.failure_type is FailureType.DNS
    assert "no-such-host.invalid" in caught.value.message


# -- DNS -----------------------------------------------------------------------------------


async def test_dns_a_and_mx(dns_port: int) -> None:
    a = await probe_dns("shop.test", nameserver=HOST, port=dns_port, timeout_s=2)
    assert sorted(a.answers) == ["127.0.0.1", "127.0.0.2"]
    assert a.nameserver == f"{HOST}:{dns_port}"
    assert a.record_type == "A"
    mx = await probe_dns("shop.test", record_type="mx", nameserver=HOST, port=dns_port, timeout_s=2)
    assert sorted(mx.answers) == ["10 mail.shop.test.", "20 backup.shop.test."]
    txt = await probe_dns(
        "shop.test", record_type="TXT", nameserver=HOST, port=dns_port, timeout_s=2
    )
    assert txt.answers == ("v=spf1 -all",)
    cname = await probe_dns(
        "www.shop.test", record_type="CNAME", nameserver=HOST, port=dns_port, timeout_s=2
    )
    assert cname.answers == ("shop.test.",)


@pytest.mark.parametrize(
    ("name", "record_type", "failure_type", "words"),
    [
        ("nope.test", "A", FailureType.DNS, "NXDOMAIN"),
        ("shop.test", "AAAA", FailureType.DNS, "no AAAA records"),
        ("broken.test", "A", FailureType.DNS, "SERVFAIL"),
        ("silent.test", "A", FailureType.TIMEOUT, "no answer within 0.3s"),
    ],
)
async def test_dns_failures(
    dns_port: int, name: str, record_type: str, failure_type: FailureType, words: str
) -> None:
    with pytest.raises(ProbeError) as caught:
        await probe_dns(
            name, record_type=record_type, nameserver=HOST, port=dns_port, timeout_s=0.3
        )
    error = caught.value
    assert error.failure_type is failure_type
    assert words in error.message
    # the message names the question and the server asked
    assert f"{record_type} {name}" in error.message
    assert f"{HOST}:{dns_port}" in error.message


async def test_dns_rejects_unsupported_type(dns_port: int) -> None:
    with pytest.raises(ValueError, match="not supported"):
        await probe_dns("shop.test", record_type="PTR", nameserver=HOST, port=dns_port, timeout_s=1)


# -- TLS -----------------------------------------------------------------------------------


async def test_tls_valid_certificate(certs: Certs, serve_tls: ServeTls) -> None:
    leaf = certs.leaf("localhost", HOST, days=90)
    port = await serve_tls(leaf.configure_cert)
    result = await probe_tls(HOST, port, ca_file=str(certs.ca_file), timeout_s=2)
    assert result.chain_valid
    assert result.hostname_valid
    assert result.verify_error is None
    assert 89.99 < result.days_left <= 90
    assert result.not_after.tzinfo is not None
    assert abs((result.not_after - (certs.now + dt.timedelta(days=90))).total_seconds()) < 1
    assert set(result.sans) == {"localhost", HOST}
    assert result.tls_version.startswith("TLSv1.")
    assert result.cipher
    assert result.handshake_s > 0
    by_name = await probe_tls(
        HOST, port, server_name="localhost", ca_file=str(certs.ca_file), timeout_s=2
    )
    assert by_name.server_name == "localhost"
    assert by_name.hostname_valid


async def test_tls_unknown_ca_is_reported_not_raised(certs: Certs, serve_tls: ServeTls) -> None:
    port = await serve_tls(certs.leaf(HOST).configure_cert)
    result = await probe_tls(HOST, port, timeout_s=2)  # system CAs do not know trustme's CA
    assert not result.chain_valid
    assert result.verify_error is not None
    assert "local issuer" in result.verify_error
    assert result.hostname_valid
    assert result.days_left > 80


async def test_tls_self_signed(certs: Certs, serve_tls: ServeTls) -> None:
    port = await serve_tls(self_signed(certs.tmp, "localhost"))
    result = await probe_tls(HOST, port, server_name="localhost", timeout_s=2)
    assert not result.chain_valid
    assert result.verify_error is not None
    assert "self-signed" in result.verify_error
    assert result.subject == result.issuer == "CN=localhost"
    assert result.hostname_valid


async def test_tls_expired(certs: Certs, serve_tls: ServeTls) -> None:
    port = await serve_tls(certs.leaf(HOST, days=-2, valid_from_days=-30).configure_cert)
    result = await probe_tls(HOST, port, ca_file=str(certs.ca_file), timeout_s=2)
    assert result.expired
    assert -2.01 < result.days_left < -1.99
    assert not result.chain_valid
    assert result.verify_error == "certificate has expired"


async def test_tls_network_failures(closed_port: int, tcp_port: int, certs: Certs) -> None:
    with pytest.raises(ProbeError) as refused:
        await probe_tls(HOST, closed_port, timeout_s=2)
    assert refused.value.failure_type is FailureType.CONNECT

    with pytest.raises(ProbeError) as unresolvable:
        await probe_tls("no-such-host.invalid", 443, timeout_s=5)
    assert unresolvable.value.failure_type is FailureType.DNS

    # the TCP server closes at once: no handshake can complete
    with pytest.raises(ProbeError) as closed:
        await probe_tls(HOST, tcp_port, timeout_s=2)
    assert closed.value.failure_type is FailureType.TLS


async def test_tls_handshake_timeout() -> None:
    gave_up = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up
        writer.close()
        await writer.wait_closed()
        gave_up.set()

    server = await asyncio.start_server(silent, HOST, 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(ProbeError) as caught:
            await probe_tls(HOST, port, timeout_s=0.3)
        await asyncio.wait_for(gave_up.wait(), 2)  # the probe closed its connection
    assert caught.value.failure_type is FailureType.TIMEOUT
    assert "TLS handshake" in caught.value.message


async def test_tls_not_tls() -> None:
    async def http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(http, HOST, 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(ProbeError) as caught:
            await probe_tls(HOST, port, timeout_s=2)
    assert caught.value.failure_type is FailureType.TLS
    assert "handshake" in caught.value.message


def test_verifying_context_is_built_once(certs: Certs) -> None:
    assert verifying_context(str(certs.ca_file)) is verifying_context(str(certs.ca_file))
    assert verifying_context(None) is verifying_context(None)
    with pytest.raises(ValueError, match="cannot load CA file"):
        verifying_context(str(certs.tmp / "missing.pem"))


# -- as flow steps, through the Runner -----------------------------------------------------


def settings(base_url: str, ca_file: Path | None = None, **secrets: str) -> Settings:
    service: dict[str, Any] = {"base_url": base_url}
    if ca_file is not None:
        service["tls"] = {"ca_file": str(ca_file)}
    environment = {
        "services": {"shop": service},
        "secrets": {k: {"value": v} for k, v in secrets.items()},
    }
    return Settings.model_validate({"environments": {"test": environment}})


async def run(spec: CheckSpec, config: Settings) -> RunResult:
    return await Runner(config).run(RunRequest(check=spec, environment="test"))


def spec_of(func: Callable[..., Any]) -> CheckSpec:
    spec: CheckSpec = getattr(func, "__synth_check__")  # noqa: B009
    return spec


async def test_flow_tcp_steps(tcp_port: int, closed_port: int) -> None:
    @synth.check(service="shop", timeout="5s")
    async def ports(flow: synth.Flow) -> None:
        await flow.tcp()  # the service's own host and port, as an implicit step
        async with flow.step("database"):
            await flow.tcp(HOST, closed_port, timeout=1)

    result = await run(spec_of(ports), settings(f"http://{HOST}:{tcp_port}"))
    assert result.status is Status.FAILED
    assert [s.name for s in result.steps] == [f"tcp {HOST}:{tcp_port}", "database"]
    first, second = result.steps
    assert first.status is Status.PASSED
    assert first.details["address"] == HOST
    assert first.details["connect_s"] >= 0
    assert result.failed_step == "database"
    assert result.failure is not None
    assert result.failure.type is FailureType.CONNECT
    assert result.failure.url == f"tcp://{HOST}:{closed_port}"
    assert second.details["target"] == f"{HOST}:{closed_port}"


async def test_flow_probe_reaches_the_registry(tcp_port: int) -> None:
    """`flow.probe(kind, ...)` runs any registered protocol with its YAML option keys;
    `flow.tcp` is the same probe."""

    @synth.check(service="shop", timeout="5s")
    async def generic(flow: synth.Flow) -> None:
        facts = await flow.probe("tcp", host=HOST, port=tcp_port)
        assert facts.port == tcp_port
        async with flow.step("same probe"):
            await flow.tcp(HOST, tcp_port)

    result = await run(spec_of(generic), settings(f"http://{HOST}:{tcp_port}"))
    assert result.status is Status.PASSED, result.failure
    assert [s.name for s in result.steps] == [f"tcp {HOST}:{tcp_port}", "same probe"]
    assert [type(s.facts).__name__ for s in result.steps] == ["TcpResult", "TcpResult"]


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda flow: flow.probe("ping", host=HOST), "flow.probe('ping'): no such probe"),
        (lambda flow: flow.tcp(HOST, 70000), "flow.tcp(): port: Input should be less than"),
        (lambda flow: flow.tcp(HOST), "flow.tcp(): tcp with a host needs a port"),
        (lambda flow: flow.dns("x.test", record_type="NOPE"), "unknown DNS record type"),
        (lambda flow: flow.probe("tls", min_days=-1), "flow.tls(): min_days: Input should"),
        (lambda flow: flow.probe("tcp", hots=HOST), "flow.tcp(): hots: Extra inputs"),
    ],
)
async def test_flow_probe_options_are_validated(
    tcp_port: int, call: Callable[[synth.Flow], Awaitable[Any]], words: str
) -> None:
    """A bad option is the check's own mistake: a script error naming the option, before
    anything is sent."""

    @synth.check(service="shop", timeout="5s")
    async def mistaken(flow: synth.Flow) -> None:
        async with flow.step("probe"):
            await call(flow)

    result = await run(spec_of(mistaken), settings(f"http://{HOST}:{tcp_port}"))
    assert result.status is Status.FAILED
    assert result.failure is not None
    assert result.failure.type is FailureType.SCRIPT_ERROR
    assert words in result.failure.message
    assert result.failed_step == "probe"


async def test_flow_dns_expectations(dns_port: int) -> None:
    async def lookup(flow: synth.Flow, **kwargs: Any) -> None:
        await flow.dns("shop.test", nameserver=HOST, port=dns_port, timeout=1, **kwargs)

    cases: list[tuple[dict[str, Any], FailureType | None, str]] = [
        ({"expect": ["127.0.0.2", "127.0.0.1"]}, None, ""),
        ({"expect_contains": "127.0.0.1"}, None, ""),
        ({"record_type": "MX", "expect": ["20 BACKUP.shop.test", "10 mail.shop.test."]}, None, ""),
        ({"record_type": "MX", "expect_contains": ["10 mail.shop.test."]}, None, ""),
        ({"expect": ["127.0.0.1"]}, FailureType.DNS, "unexpected 127.0.0.2"),
        ({"expect_contains": ["127.0.0.9"]}, FailureType.DNS, "lack 127.0.0.9"),
        ({"record_type": "MX", "expect": ["10 mail.shop.test."]}, FailureType.DNS, "unexpected"),
    ]
    for kwargs, failure_type, words in cases:

        @synth.check(name="dns-probe", service="shop", timeout="5s")
        async def probe(flow: synth.Flow, kwargs: dict[str, Any] = kwargs) -> None:
            async with flow.step("resolve"):
                await lookup(flow, **kwargs)

        result = await run(spec_of(probe), settings(f"http://{HOST}:1"))
        assert result.failure_type is failure_type, (kwargs, result.failure)
        step = result.steps[0]
        assert step.name == "resolve"
        assert step.details["nameserver"] == f"{HOST}:{dns_port}"
        if failure_type is not None:
            assert result.failure is not None
            assert words in result.failure.message
            assert f"at {HOST}:{dns_port}" in result.failure.message
            assert result.failure.expected
            assert result.failure.actual


async def test_flow_dns_nxdomain_is_an_implicit_step(dns_port: int) -> None:
    @synth.check(service="shop", timeout="5s")
    async def lookup(flow: synth.Flow) -> None:
        await flow.dns("nope.test", nameserver=HOST, port=dns_port, timeout=1)

    result = await run(spec_of(lookup), settings(f"http://{HOST}:1"))
    assert result.failure_type is FailureType.DNS
    assert result.failed_step == "dns A nope.test"
    assert result.failure is not None
    assert "NXDOMAIN" in result.failure.message


async def test_flow_tls_passes_with_details(certs: Certs, serve_tls: ServeTls) -> None:
    port = await serve_tls(certs.leaf(HOST, days=60).configure_cert)

    @synth.check(service="shop", timeout="5s")
    async def cert(flow: synth.Flow) -> None:
        result = await flow.tls(min_days=30)
        flow.vars["days"] = result.days_left

    result = await run(spec_of(cert), settings(f"https://{HOST}:{port}", certs.ca_file))
    assert result.passed, result.failure
    step = result.steps[0]
    assert step.name == f"tls {HOST}:{port}"
    assert 59.9 < step.details["days_left"] <= 60
    assert step.details["chain_valid"] is True
    assert step.details["not_after"].startswith(str((certs.now + dt.timedelta(days=60)).date()))
    assert "O=trustme" in step.details["issuer"]


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("expiring", "certificate expires in 5.0 days (minimum 14)"),
        ("expired", "certificate has expired"),
        ("self_signed", "certificate chain is not trusted: self-signed certificate"),
        ("mismatch", "certificate is not valid for 127.0.0.1 (SANs: other.example)"),
    ],
)
async def test_flow_tls_failures(certs: Certs, serve_tls: ServeTls, case: str, words: str) -> None:
    configure: Callable[[ssl.SSLContext], None]
    if case == "expiring":
        configure = certs.leaf(HOST, days=5).configure_cert
    elif case == "expired":
        configure = certs.leaf(HOST, days=-3, valid_from_days=-40).configure_cert
    elif case == "self_signed":
        configure = self_signed(certs.tmp, HOST)
    else:
        configure = certs.leaf("other.example").configure_cert
    port = await serve_tls(configure)

    @synth.check(service="shop", timeout="5s")
    async def cert(flow: synth.Flow) -> None:
        async with flow.step("certificate"):
            await flow.tls(min_days=14)

    result = await run(spec_of(cert), settings(f"https://{HOST}:{port}", certs.ca_file))
    assert result.status is Status.FAILED
    assert result.failure is not None
    assert result.failure.type is FailureType.TLS
    assert words in result.failure.message
    assert result.failure.message.count(";") == 0, "one problem, one message"
    details = result.steps[0].details
    assert {"days_left", "not_after", "issuer", "subject", "sans"} <= details.keys()


async def test_flow_tls_skips_checks_on_request(certs: Certs, serve_tls: ServeTls) -> None:
    port = await serve_tls(self_signed(certs.tmp, "elsewhere.example", days=3))

    @synth.check(service="shop", timeout="5s")
    async def cert(flow: synth.Flow) -> None:
        await flow.tls(min_days=None, check_chain=False, check_hostname=False)

    result = await run(spec_of(cert), settings(f"https://{HOST}:{port}"))
    assert result.passed, result.failure
    assert result.steps[0].details["chain_valid"] is False


async def test_flow_tls_redacts_secrets(certs: Certs, serve_tls: ServeTls) -> None:
    port = await serve_tls(certs.leaf("s3cr3t-host.example").configure_cert)

    @synth.check(service="shop", timeout="5s")
    async def cert(flow: synth.Flow) -> None:
        await flow.tls()

    config = settings(f"https://{HOST}:{port}", certs.ca_file, token="s3cr3t-host")
    result = await run(spec_of(cert), config)
    assert result.failure is not None
    assert result.failure.type is FailureType.TLS
    text = f"{result.failure.message} {result.failure.expected} {result.failure.actual}"
    assert "s3cr3t-host" not in text
    assert MASK in text


async def test_probe_checks_declared_in_one_line(
    tcp_port: int, dns_port: int, certs: Certs, serve_tls: ServeTls
) -> None:
    tls_port = await serve_tls(certs.leaf(HOST, days=7).configure_cert)
    collected: list[CheckSpec] = []
    api.collector.active = collected
    try:
        port_check = tcp_check("shop-port", service="shop", every="30s", tags=["probe"])
        db_check = tcp_check("db-port", service="shop", host=HOST, port=tcp_port)
        mx_check = dns_check(
            "shop-mx",
            service="shop",
            query="shop.test",
            record_type="MX",
            expect_contains=["10 mail.shop.test."],
            nameserver=HOST,
            port=dns_port,
        )
        cert_check = tls_check("shop-cert", service="shop", port=tls_port, min_days=14)
    finally:
        api.collector.active = None
    assert collected == [port_check, db_check, mx_check, cert_check]
    assert port_check.schedule.every_s == 30
    assert port_check.tags == ("probe",)
    assert port_check.source is not None
    assert port_check.source.path == __file__
    assert "db-port" in db_check.name
    assert db_check.description

    config = settings(f"http://{HOST}:{tcp_port}", certs.ca_file)
    for spec in (port_check, db_check, mx_check):
        result = await run(spec, config)
        assert result.passed, (spec.name, result.failure)
        assert len(result.steps) == 1
    result = await run(mx_check, config)
    assert result.steps[0].name == "dns MX shop.test"

    cert = await run(cert_check, settings(f"https://{HOST}:{tcp_port}", certs.ca_file))
    assert cert.failure_type is FailureType.TLS
    assert cert.failure is not None
    assert "minimum 14" in cert.failure.message
    assert cert.steps[0].name == f"tls {HOST}:{tls_port}"


def test_probe_check_rejects_unknown_option() -> None:
    with pytest.raises(api.CheckDefinitionError, match="unknown option"):
        tcp_check("bad", service="shop", every_s=3)  # type: ignore[call-arg]


async def test_flow_dns_masks_secrets_in_answers(dns_port: int) -> None:
    @synth.check(service="shop", timeout="5s")
    async def txt(flow: synth.Flow) -> None:
        await flow.dns(
            "shop.test", record_type="TXT", expect=["other"], nameserver=HOST, port=dns_port
        )

    result = await run(spec_of(txt), settings(f"http://{HOST}:1", token="spf1"))
    assert result.failure is not None
    assert result.failure.actual == f"v={MASK} -all"
    assert result.steps[0].details["answers"] == [f"v={MASK} -all"]


async def test_check_deadline_during_a_probe_names_it() -> None:
    gave_up = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()
        gave_up.set()

    server = await asyncio.start_server(silent, HOST, 0)
    async with server:
        port = server.sockets[0].getsockname()[1]

        @synth.check(service="shop", timeout="300ms")
        async def slow(flow: synth.Flow) -> None:
            await flow.tls(timeout=5)

        result = await run(spec_of(slow), settings(f"https://{HOST}:{port}"))
        await asyncio.wait_for(gave_up.wait(), 2)  # the cancelled probe closed its connection
    assert result.failure is not None
    assert result.failure.type is FailureType.TIMEOUT
    assert result.failed_step == f"tls {HOST}:{port}"
    assert result.failure.url == f"tls://{HOST}:{port}"
