"""TLS probe: the facts of a server's certificate, including when it is not valid.

The handshake first verifies the chain (the system CAs or `ca_file`). When verification
fails, OpenSSL's reason is recorded and a second handshake, without verification, reads
the certificate anyway: an expired or self-signed certificate is a finding to report, not
a reason to report nothing. The host name is matched against the certificate's SANs here
rather than by OpenSSL, which stops at its first error: an expired certificate for the
wrong name is then reported as both.

As a step: `flow.tls(min_days=21)` or YAML `tls: {host: shop.example.com, min_days: 21}`.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from synth.model import FailureType
from synth.probes import stepping
from synth.probes.contract import Probe
from synth.probes.errors import ProbeError
from synth.probes.options import Duration, Port, ProbeOptions, Templated
from synth.probes.stepping import Problem
from synth.probes.tcp import Stage, close, connect

if TYPE_CHECKING:
    from cryptography import x509

    from synth.checks.context import FlowContext


@dataclass(frozen=True, slots=True)
class TlsResult:
    """What the server presented and whether a client would accept it."""

    host: str
    port: int
    server_name: str
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    days_left: float
    sans: tuple[str, ...]
    chain_valid: bool
    hostname_valid: bool
    verify_error: str | None
    tls_version: str
    cipher: str
    handshake_s: float

    @property
    def expired(self) -> bool:
        return self.days_left < 0


@dataclass(frozen=True, slots=True)
class _Handshake:
    der: bytes
    tls_version: str
    cipher: str
    handshake_s: float


async def probe_tls(
    host: str,
    port: int = 443,
    *,
    server_name: str | None = None,
    ca_file: str | None = None,
    timeout_s: float,
) -> TlsResult:
    """Handshake with `host:port` (SNI and name check: `server_name`, default `host`) and
    describe its certificate, within `timeout_s`.

    Raises ProbeError: `dns`, `connect` or `timeout` for network failures, `tls` when no
    handshake completes at all (not TLS, no common protocol). An untrusted, expired or
    misnamed certificate is reported in the result, not raised.
    """
    name = (server_name or host).strip("[]")
    stage = Stage(f"resolving {host}")
    try:
        async with asyncio.timeout(timeout_s):
            verify_error: str | None = None
            outcome = await _handshake(host, port, name, verifying_context(ca_file), stage)
            if isinstance(outcome, str):
                verify_error = outcome
                outcome = await _handshake(host, port, name, _reading_context(), stage)
    except TimeoutError:
        raise ProbeError(
            FailureType.TIMEOUT, f"timed out after {timeout_s:g}s {stage.doing}"
        ) from None
    if isinstance(outcome, str):  # the unverified handshake cannot fail verification
        raise ProbeError(FailureType.TLS, f"TLS handshake with {host}:{port} failed: {outcome}")
    cert = _load_certificate(outcome.der, host, port)
    dns_names, ip_addresses = _subject_alt_names(cert)
    not_after = cert.not_valid_after_utc
    return TlsResult(
        host=host,
        port=port,
        server_name=name,
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        not_before=cert.not_valid_before_utc,
        not_after=not_after,
        days_left=(not_after - datetime.now(UTC)).total_seconds() / 86400,
        sans=tuple(dns_names + ip_addresses),
        chain_valid=verify_error is None,
        hostname_valid=matches_hostname(name, dns_names, ip_addresses),
        verify_error=verify_error,
        tls_version=outcome.tls_version,
        cipher=outcome.cipher,
        handshake_s=outcome.handshake_s,
    )


@functools.cache
def verifying_context(ca_file: str | None) -> ssl.SSLContext:
    """A context that verifies the chain against `ca_file` (or the system CAs), built once
    per CA file: loading a bundle costs ~50 ms of CPU. Names are checked by the probe."""
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load CA file {ca_file}: {exc}") from None
    context.check_hostname = False
    return context


@functools.cache
def _reading_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def _handshake(
    host: str, port: int, server_name: str, context: ssl.SSLContext, stage: Stage
) -> _Handshake | str:
    """One connection and handshake; returns OpenSSL's reason if verification failed."""
    connection = await connect(host, port, stage)
    writer = connection.writer
    stage.doing = f"in the TLS handshake with {host}:{port}"
    started = time.perf_counter()
    try:
        await writer.start_tls(context, server_hostname=server_name)
    except ssl.SSLCertVerificationError as exc:
        writer.transport.abort()
        return _verify_message(exc)
    except ssl.SSLError as exc:
        writer.transport.abort()
        reason = exc.reason or str(exc)
        raise ProbeError(
            FailureType.TLS, f"TLS handshake with {host}:{port} failed: {reason}"
        ) from None
    except OSError as exc:
        writer.transport.abort()
        reason = (exc.strerror or str(exc) or type(exc).__name__).lower()
        raise ProbeError(
            FailureType.TLS,
            f"connection to {host}:{port} closed during the TLS handshake: {reason}",
        ) from None
    except BaseException:  # cancelled by the deadline
        writer.transport.abort()
        raise
    handshake_s = time.perf_counter() - started
    ssl_object = writer.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    cipher = ssl_object.cipher() if ssl_object is not None else None
    version = ssl_object.version() if ssl_object is not None else None
    await close(writer)
    if not der:
        raise ProbeError(FailureType.TLS, f"{host}:{port} presented no certificate")
    return _Handshake(
        der=der,
        tls_version=version or "unknown",
        cipher=cipher[0] if cipher else "unknown",
        handshake_s=handshake_s,
    )


def _verify_message(exc: ssl.SSLCertVerificationError) -> str:
    message = exc.verify_message or exc.reason or str(exc)
    # OpenSSL 1.1 wrote "self signed", 3.x writes "self-signed"; report one spelling.
    return str(message).replace("self signed", "self-signed")


def _load_certificate(der: bytes, host: str, port: int) -> x509.Certificate:
    # Imported here: cryptography.x509 adds ~80 ms to start-up for runs that never use it.
    from cryptography import x509

    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise ProbeError(
            FailureType.TLS, f"{host}:{port} presented an unreadable certificate: {exc}"
        ) from None


def _subject_alt_names(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    from cryptography import x509

    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return [], []
    names = extension.value
    dns_names = [str(n) for n in names.get_values_for_type(x509.DNSName)]
    ip_addresses = [str(ip) for ip in names.get_values_for_type(x509.IPAddress)]
    return dns_names, ip_addresses


def matches_hostname(hostname: str, dns_names: Iterable[str], ip_addresses: Iterable[str]) -> bool:
    """Whether a certificate with these SANs is valid for `hostname`, as browsers decide:
    an IP address must be an IP SAN; a name must equal a DNS SAN, or match a wildcard that
    stands for exactly the whole leftmost label (`*.example.com`). The subject CN is
    ignored, as modern clients ignore it."""
    try:
        address = ipaddress.ip_address(hostname)
    except ValueError:
        pass
    else:
        return any(_same_ip(address, candidate) for candidate in ip_addresses)
    name = _ascii_name(hostname)
    return any(_name_matches(pattern.lower().rstrip("."), name) for pattern in dns_names)


def _same_ip(address: ipaddress.IPv4Address | ipaddress.IPv6Address, candidate: str) -> bool:
    try:
        return ipaddress.ip_address(candidate) == address
    except ValueError:
        return False


def _ascii_name(hostname: str) -> str:
    name = hostname.lower().rstrip(".")
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError:
        return name


def _name_matches(pattern: str, name: str) -> bool:
    if pattern == name:
        return True
    if not pattern.startswith("*."):
        return False
    suffix = pattern[2:]
    if "*" in suffix or "." not in suffix:  # "*.com" is never valid
        return False
    label, dot, rest = name.partition(".")
    return bool(label) and bool(dot) and rest == suffix


# -- expectations (pure) -----------------------------------------------------------------


def tls_problems(
    result: TlsResult,
    *,
    min_days: float | None = 14,
    check_chain: bool = True,
    check_hostname: bool = True,
) -> list[Problem]:
    """Everything wrong with a certificate, the most urgent first: expired, untrusted,
    misnamed, expiring within `min_days` (None: not checked)."""
    problems: list[Problem] = []
    not_after = result.not_after.isoformat()
    if result.expired:
        problems.append(
            Problem(
                f"certificate has expired: not valid after {not_after} "
                f"({-result.days_left:.1f} days ago)",
                "a certificate that has not expired",
                f"expired {not_after}",
            )
        )
    # OpenSSL names only its first error; an expiry already reported above is not repeated.
    expiry_only = result.expired and "expired" in (result.verify_error or "")
    if check_chain and not result.chain_valid and not expiry_only:
        problems.append(
            Problem(
                f"certificate chain is not trusted: {result.verify_error}",
                "a chain to a trusted CA",
                f"{result.verify_error} (issuer {result.issuer})",
            )
        )
    if check_hostname and not result.hostname_valid:
        sans = ", ".join(result.sans) or "none"
        problems.append(
            Problem(
                f"certificate is not valid for {result.server_name} (SANs: {sans})",
                f"a SAN matching {result.server_name}",
                f"SANs: {sans}",
            )
        )
    if min_days is not None and not result.expired and result.days_left < min_days:
        problems.append(
            Problem(
                f"certificate expires in {result.days_left:.1f} days (minimum {min_days:g})",
                f"at least {min_days:g} days left",
                f"{result.days_left:.1f} days left, not valid after {not_after}",
            )
        )
    return problems


# -- as a step ---------------------------------------------------------------------------


class TlsOptions(ProbeOptions):
    """Handshake and check the certificate: chain, hostname, days until expiry."""

    host: Templated | None = None
    port: Port | None = None
    service: str | None = None
    server_name: str | None = None
    min_days: Annotated[float, Field(ge=0)] | None = 14
    check_chain: bool = True
    check_hostname: bool = True
    timeout: Duration | None = None


async def run_tls(ctx: FlowContext, options: TlsOptions) -> TlsResult:
    """Read the certificate of the endpoint (default: the service's host, its port or 443)
    and fail the step as `tls` if it has expired, has fewer than `min_days` left, does not
    chain to a trusted CA (the environment's `tls.ca_file`, else the system CAs) or is not
    valid for the name. The certificate's facts go into the step's details."""
    target = stepping.endpoint(
        ctx, options.host, options.port, options.service, default_port=_default_port
    )
    timeout_s = stepping.timeout_s(ctx, options.timeout)
    ca_file = str(target.tls.ca_file) if target.tls.ca_file else None
    async with stepping.probe_step(ctx, f"tls {target.label}") as recorder:
        stepping.record(ctx, recorder, {"target": target.label})
        with stepping.probing(ctx, recorder, "TLS", f"tls://{target.label}"):
            result = await probe_tls(
                target.host,
                target.port,
                server_name=options.server_name,
                ca_file=ca_file,
                timeout_s=timeout_s,
            )
        stepping.record(ctx, recorder, _details(result))
        stepping.record_facts(ctx, recorder, result)
        problems = tls_problems(
            result,
            min_days=options.min_days,
            check_chain=options.check_chain,
            check_hostname=options.check_hostname,
        )
        if problems:
            raise stepping.failure(ctx, recorder, FailureType.TLS, problems)
    return result


def _default_port(scheme: str, url_port: int | None) -> int:
    return url_port or 443


def _details(result: TlsResult) -> dict[str, Any]:
    return {
        "server_name": result.server_name,
        "subject": result.subject,
        "issuer": result.issuer,
        "not_before": result.not_before.astimezone(UTC).isoformat(),
        "not_after": result.not_after.astimezone(UTC).isoformat(),
        "days_left": round(result.days_left, 2),
        "sans": list(result.sans),
        "chain_valid": result.chain_valid,
        "hostname_valid": result.hostname_valid,
        "verify_error": result.verify_error,
        "tls_version": result.tls_version,
        "cipher": result.cipher,
        "handshake_s": result.handshake_s,
    }


def _title(options: TlsOptions, service: str) -> str:
    return stepping.endpoint_title("tls", options.host or options.service, options.port, service)


PROBE = Probe(
    kind="tls",
    options=TlsOptions,
    facts=TlsResult,
    run=run_tls,
    title=_title,
    summary="check a server's certificate",
    templated=("host",),
)
