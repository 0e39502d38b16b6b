"""HTTP/1.1 requests as the wire saw them: a pcap file read into per-request timestamps.

No dependency: classic pcap (not pcapng) is a 24-byte global header and a 16-byte header
per record. Ethernet (DLT 1, what `lo` gives) and Linux cooked (DLT 113) frames carrying
IPv4 or IPv6 + TCP are read; anything else is skipped and counted.

Every request to `server_port` is found per TCP connection (a new SYN on a client port
starts a new connection: ports are reused within seconds) and per request on it (a client
payload after a server payload starts the next request). Its `traceparent` header is read
from the request's first bytes, so the request can be joined with a client's own record.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

MAGIC_MICRO = 0xA1B2C3D4
MAGIC_NANO = 0xA1B23C4D
DLT_EN10MB = 1
DLT_LINUX_SLL = 113
_ETHERTYPE_IPV4 = 0x0800
_ETHERTYPE_IPV6 = 0x86DD
_IPPROTO_TCP = 6
TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_ACK = 0x10
_REQUEST_BYTES_KEPT = 8192  # enough for the request line and headers
_TRACEPARENT = re.compile(
    rb"\r\ntraceparent:[ \t]*[0-9a-f]{2}-[0-9a-f]{32}-([0-9a-f]{16})-[0-9a-f]{2}", re.IGNORECASE
)


class PcapError(ValueError):
    """The file is not a pcap this reader understands."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One captured TCP segment."""

    ts_ns: int
    src: str
    sport: int
    dst: str
    dport: int
    flags: int
    payload_len: int  # from the IP header: true even when the snaplen cut the capture
    payload: bytes  # the captured part of the payload


@dataclass(slots=True)
class PcapStats:
    """What `read_segments` read and skipped."""

    records: int = 0
    segments: int = 0
    skipped: int = 0  # not IPv4/IPv6 TCP, or truncated before the TCP header


def read_segments(path: Path, stats: PcapStats | None = None) -> Iterator[Segment]:
    """The TCP segments of a classic pcap file, in file order."""
    stats = stats if stats is not None else PcapStats()
    with path.open("rb") as handle:
        header = handle.read(24)
        if len(header) < 24:
            raise PcapError(f"{path}: {len(header)} bytes, shorter than a pcap header")
        endian, nano = _byte_order(header[:4], path)
        _, _, _, _, _, linktype = struct.unpack(endian + "HHiIII", header[4:])
        linktype &= 0x0FFFFFFF  # the upper bits may carry the FCS length
        if linktype not in (DLT_EN10MB, DLT_LINUX_SLL):
            raise PcapError(f"{path}: link type {linktype} (only Ethernet and Linux SLL)")
        record = struct.Struct(endian + "IIII")
        while True:
            head = handle.read(16)
            if not head:
                return
            if len(head) < 16:
                raise PcapError(f"{path}: truncated record header at byte {handle.tell()}")
            seconds, fraction, caplen, _ = record.unpack(head)
            frame = handle.read(caplen)
            if len(frame) < caplen:
                return  # a capture stopped mid-write: keep what came before
            stats.records += 1
            ts_ns = seconds * 1_000_000_000 + (fraction if nano else fraction * 1000)
            segment = _decode(frame, linktype, ts_ns)
            if segment is None:
                stats.skipped += 1
                continue
            stats.segments += 1
            yield segment


def _byte_order(magic: bytes, path: Path) -> tuple[str, bool]:
    for endian in ("<", ">"):
        (value,) = struct.unpack(endian + "I", magic)
        if value in (MAGIC_MICRO, MAGIC_NANO):
            return endian, value == MAGIC_NANO
    raise PcapError(f"{path}: magic {magic.hex()} is not classic pcap (pcapng is not read)")


def _decode(frame: bytes, linktype: int, ts_ns: int) -> Segment | None:
    if linktype == DLT_EN10MB:
        offset, ethertype_at = 14, 12
    else:
        offset, ethertype_at = 16, 14
    if len(frame) < offset:
        return None
    (ethertype,) = struct.unpack_from("!H", frame, ethertype_at)
    if ethertype == _ETHERTYPE_IPV4:
        if len(frame) < offset + 20:
            return None
        ihl = (frame[offset] & 0x0F) * 4
        (total_len,) = struct.unpack_from("!H", frame, offset + 2)
        if frame[offset + 9] != _IPPROTO_TCP:
            return None
        src = ".".join(str(b) for b in frame[offset + 12 : offset + 16])
        dst = ".".join(str(b) for b in frame[offset + 16 : offset + 20])
        tcp_at, ip_payload = offset + ihl, total_len - ihl
    elif ethertype == _ETHERTYPE_IPV6:
        if len(frame) < offset + 40 or frame[offset + 6] != _IPPROTO_TCP:
            return None  # extension headers are not followed
        (ip_payload,) = struct.unpack_from("!H", frame, offset + 4)
        src = frame[offset + 8 : offset + 24].hex()
        dst = frame[offset + 24 : offset + 40].hex()
        tcp_at = offset + 40
    else:
        return None
    if len(frame) < tcp_at + 20:
        return None
    sport, dport = struct.unpack_from("!HH", frame, tcp_at)
    data_offset = (frame[tcp_at + 12] >> 4) * 4
    flags = frame[tcp_at + 13]
    payload_at = tcp_at + data_offset
    return Segment(
        ts_ns=ts_ns,
        src=src,
        sport=sport,
        dst=dst,
        dport=dport,
        flags=flags,
        payload_len=max(ip_payload - data_offset, 0),
        payload=frame[payload_at:],
    )


@dataclass(slots=True)
class WireRequest:
    """One request and its response on the wire; times in ns since the epoch."""

    client: tuple[str, int]
    request_ns: int  # the request's first payload segment
    syn_ns: int | None = None  # only for the connection's first request
    syn_ack_ns: int | None = None
    response_end_ns: int | None = None  # the response's last payload segment
    response_bytes: int = 0
    head: bytearray = field(default_factory=bytearray)

    @property
    def span_id(self) -> str | None:
        """The parent span id of the request's `traceparent` header, lowercase."""
        match = _TRACEPARENT.search(bytes(self.head))
        return match.group(1).decode().lower() if match else None

    @property
    def handshake_s(self) -> float | None:
        """SYN to SYN-ACK: the TCP connect as the client's kernel times it."""
        if self.syn_ns is None or self.syn_ack_ns is None:
            return None
        return (self.syn_ack_ns - self.syn_ns) / 1e9

    @property
    def exchange_s(self) -> float | None:
        """The request's first byte to the response's last byte."""
        if self.response_end_ns is None:
            return None
        return (self.response_end_ns - self.request_ns) / 1e9

    @property
    def network_s(self) -> float | None:
        """Handshake + exchange: the time on the network, without the client's own time
        between connect and send (the span synth's `timings.total_s` covers)."""
        exchange = self.exchange_s
        if exchange is None:
            return None
        return exchange + (self.handshake_s or 0.0)

    @property
    def span_s(self) -> float | None:
        """SYN (or, on a reused connection, the request) to the response's last byte:
        everything, the client's time between connect and send included."""
        if self.response_end_ns is None:
            return None
        start = self.syn_ns if self.syn_ns is not None else self.request_ns
        return (self.response_end_ns - start) / 1e9


@dataclass(slots=True)
class _Connection:
    syn_ns: int | None
    syn_ack_ns: int | None = None
    requests: list[WireRequest] = field(default_factory=list)


def http_requests(segments: Iterable[Segment], server_port: int) -> list[WireRequest]:
    """Every request a client sent to `server_port`, with its response's timing, in the
    order the requests started. Connections whose SYN was not captured still yield their
    requests (without handshake)."""
    open_: dict[tuple[str, int], _Connection] = {}
    done: list[WireRequest] = []
    for seg in segments:
        if seg.dport == server_port:
            key = (seg.src, seg.sport)
            conn = open_.get(key)
            if seg.flags & TCP_SYN and not seg.flags & TCP_ACK:
                if conn is not None and conn.syn_ack_ns is None and not conn.requests:
                    continue  # a retransmitted SYN: the connect began at the first one
                if conn is not None:
                    done.extend(conn.requests)
                open_[key] = _Connection(syn_ns=seg.ts_ns)
                continue
            if not seg.payload_len:
                continue
            if conn is None:
                conn = open_[key] = _Connection(syn_ns=None)
            current = conn.requests[-1] if conn.requests else None
            if current is None or current.response_end_ns is not None:
                first = not conn.requests
                current = WireRequest(
                    client=key,
                    request_ns=seg.ts_ns,
                    syn_ns=conn.syn_ns if first else None,
                    syn_ack_ns=conn.syn_ack_ns if first else None,
                )
                conn.requests.append(current)
            room = _REQUEST_BYTES_KEPT - len(current.head)
            if room > 0:
                current.head += seg.payload[:room]
        elif seg.sport == server_port:
            conn = open_.get((seg.dst, seg.dport))
            if conn is None:
                continue
            if seg.flags & TCP_SYN and seg.flags & TCP_ACK:
                if conn.syn_ack_ns is None:
                    conn.syn_ack_ns = seg.ts_ns
                continue
            if seg.payload_len and conn.requests:
                current = conn.requests[-1]
                current.response_end_ns = seg.ts_ns
                current.response_bytes += seg.payload_len
    for conn in open_.values():
        done.extend(conn.requests)
    done.sort(key=lambda request: request.request_ns)
    return done
