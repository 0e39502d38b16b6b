"""TLS probe: the facts of a server's certificate, including when it is not valid.

The handshake first verifies the chain (the system CAs or `ca_file`). When verification
fails, OpenSSL's reason is recorded and a second handshake, without verification, reads
the certificate anyway: an expired or self-signed certificate is a finding to report, not
a reason to report nothing. The host name is matched against the certificate's SANs here
rather than by OpenSSL, which stops at its first error: an expired certificate for the
wrong name is then reported as both.
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
from typing import TYPE_CHECKING

from synth.model import FailureType
from synth.probes.errors import ProbeError
from synth.probes.tcp import Stage, close, connect

if TYPE_CHECKING:
    from cryptography import x509


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
