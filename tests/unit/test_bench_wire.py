"""bench/wire.py, the pcap reader behind the timing-fidelity benchmark's wire reference:
pcap files written here byte by byte from known packets, read back into per-request
timings."""

from __future__ import annotations

import importlib.util
import struct
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SERVER = ("127.0.0.1", 8080)
CLIENT = "127.0.0.1"
SYN, ACK, PSH, FIN = 0x02, 0x10, 0x08, 0x01
SPAN_A, SPAN_B, SPAN_C = "00f067aa0ba902b7", "1111222233334444", "aaaabbbbccccdddd"


def _load_wire() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "bench" / "wire.py"
    spec = importlib.util.spec_from_file_location("bench_wire", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


wire = _load_wire()


def request_bytes(span_id: str) -> bytes:
    return (
        b"GET /ok HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: synth/0.1\r\n"
        b"TraceParent: 00-4bf92f3577b34da6a3ce929d0e0e4736-" + span_id.encode() + b"-01\r\n\r\n"
    )


def tcp_frame(src: tuple[str, int], dst: tuple[str, int], flags: int, payload: bytes) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", src[1], dst[1], 1, 1, 5 << 4, flags, 65535, 0, 0)
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(tcp) + len(payload),
        0,
        0,
        64,
        6,
        0,
        bytes(int(part) for part in src[0].split(".")),
        bytes(int(part) for part in dst[0].split(".")),
    )
    ethernet = b"\x00" * 12 + b"\x08\x00"
    return ethernet + ip + tcp + payload


def udp_frame() -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 0, 0, 64, 17, 0, b"\x7f\0\0\1", b"\x7f\0\0\1")
    return b"\x00" * 12 + b"\x08\x00" + ip + b"\x00" * 8


def write_pcap(
    path: Path,
    frames: list[tuple[int, bytes]],
    *,
    nano: bool = True,
    endian: str = "<",
    snaplen: int = 65535,
) -> Path:
    """`frames` as (timestamp ns, frame); frames longer than `snaplen` are cut, as tcpdump
    cuts them, keeping their original length in the record header."""
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, 1)]
    for ts_ns, frame in frames:
        seconds, rest = divmod(ts_ns, 1_000_000_000)
        fraction = rest if nano else rest // 1000
        kept = frame[:snaplen]
        out.append(struct.pack(endian + "IIII", seconds, fraction, len(kept), len(frame)))
        out.append(kept)
    path.write_bytes(b"".join(out))
    return path


T0 = 1_700_000_000 * 1_000_000_000
US = 1000


def conversation(port: int, start_ns: int, spans: list[str]) -> list[tuple[int, bytes]]:
    """SYN at start, SYN-ACK 10 µs later, then per span a request at +100 µs and a
    response in two segments at +300 µs and +350 µs (each request 1 ms after the last)."""
    client = (CLIENT, port)
    frames = [
        (start_ns, tcp_frame(client, SERVER, SYN, b"")),
        (start_ns + 10 * US, tcp_frame(SERVER, client, SYN | ACK, b"")),
        (start_ns + 20 * US, tcp_frame(client, SERVER, ACK, b"")),
    ]
    for i, span in enumerate(spans):
        at = start_ns + i * 1000 * US
        frames += [
            (at + 100 * US, tcp_frame(client, SERVER, PSH | ACK, request_bytes(span))),
            (at + 150 * US, tcp_frame(SERVER, client, ACK, b"")),
            (at + 300 * US, tcp_frame(SERVER, client, PSH | ACK, b"HTTP/1.1 200 OK\r\n\r\n")),
            (at + 350 * US, tcp_frame(SERVER, client, PSH | ACK, b'{"ok":true}')),
            (at + 360 * US, tcp_frame(client, SERVER, ACK, b"")),
        ]
    frames.append((start_ns + 5000 * US, tcp_frame(client, SERVER, FIN | ACK, b"")))
    return frames


def read_requests(path: Path) -> dict[str | None, Any]:
    requests = wire.http_requests(wire.read_segments(path), SERVER[1])
    return {request.span_id: request for request in requests}


def test_a_request_is_timed_from_its_packets(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "one.pcap", conversation(40000, T0, [SPAN_A]))
    (request,) = wire.http_requests(wire.read_segments(path), SERVER[1])
    assert request.span_id == SPAN_A  # header name matched whatever its case
    assert request.client == (CLIENT, 40000)
    assert request.handshake_s == pytest.approx(10e-6)
    assert request.exchange_s == pytest.approx(250e-6)  # first request byte → last response byte
    assert request.network_s == pytest.approx(260e-6)
    assert request.span_s == pytest.approx(350e-6)  # SYN → last response byte
    assert request.response_bytes == len(b"HTTP/1.1 200 OK\r\n\r\n") + len(b'{"ok":true}')


def test_a_reused_client_port_starts_a_new_connection(tmp_path: Path) -> None:
    frames = conversation(40000, T0, [SPAN_A]) + conversation(40000, T0 + 10**9, [SPAN_B])
    requests = read_requests(write_pcap(tmp_path / "reuse.pcap", frames))
    assert set(requests) == {SPAN_A, SPAN_B}
    second = requests[SPAN_B]
    assert second.syn_ns == T0 + 10**9
    assert second.span_s == pytest.approx(350e-6)


def test_keep_alive_requests_are_split_and_only_the_first_has_a_handshake(
    tmp_path: Path,
) -> None:
    requests = read_requests(
        write_pcap(tmp_path / "keepalive.pcap", conversation(40001, T0, [SPAN_A, SPAN_B]))
    )
    first, second = requests[SPAN_A], requests[SPAN_B]
    assert first.handshake_s == pytest.approx(10e-6)
    assert second.handshake_s is None
    assert second.exchange_s == pytest.approx(250e-6)
    assert second.span_s == pytest.approx(250e-6)


def test_interleaved_connections_are_kept_apart(tmp_path: Path) -> None:
    frames = conversation(40002, T0, [SPAN_A]) + conversation(40003, T0 + 50 * US, [SPAN_B])
    frames.sort(key=lambda frame: frame[0])
    requests = read_requests(write_pcap(tmp_path / "interleaved.pcap", frames))
    assert requests[SPAN_A].client == (CLIENT, 40002)
    assert requests[SPAN_B].client == (CLIENT, 40003)
    for span in (SPAN_A, SPAN_B):
        assert requests[span].network_s == pytest.approx(260e-6)


def test_microsecond_big_endian_files_are_read(tmp_path: Path) -> None:
    path = write_pcap(
        tmp_path / "micro.pcap", conversation(40004, T0, [SPAN_C]), nano=False, endian=">"
    )
    (request,) = wire.http_requests(wire.read_segments(path), SERVER[1])
    assert request.span_id == SPAN_C
    assert request.network_s == pytest.approx(260e-6)


def test_snaplen_cuts_keep_the_payload_length_and_other_traffic_is_skipped(
    tmp_path: Path,
) -> None:
    frames = [(T0 - 1000, udp_frame()), *conversation(40005, T0, [SPAN_A])]
    body = b"x" * 4000
    last_at = T0 + 400 * US
    frames.insert(-1, (last_at, tcp_frame(SERVER, (CLIENT, 40005), PSH | ACK, body)))
    stats = wire.PcapStats()
    path = write_pcap(tmp_path / "cut.pcap", frames, snaplen=256)
    (request,) = wire.http_requests(wire.read_segments(path, stats), SERVER[1])
    assert stats.skipped == 1
    assert stats.segments == len(frames) - 1
    assert request.span_id == SPAN_A  # the headers fit in the snaplen
    assert request.response_end_ns == last_at  # the cut segment still counts as payload
    assert request.response_bytes == 19 + 11 + len(body)


def test_a_request_without_traceparent_or_response_is_reported_as_such(
    tmp_path: Path,
) -> None:
    client = (CLIENT, 40006)
    frames = [
        (T0, tcp_frame(client, SERVER, SYN, b"")),
        (T0 + 10 * US, tcp_frame(SERVER, client, SYN | ACK, b"")),
        (T0 + 100 * US, tcp_frame(client, SERVER, PSH | ACK, b"GET / HTTP/1.1\r\n\r\n")),
    ]
    (request,) = wire.http_requests(
        wire.read_segments(write_pcap(tmp_path / "bare.pcap", frames)), SERVER[1]
    )
    assert request.span_id is None
    assert request.network_s is None
    assert request.span_s is None


def test_a_file_that_is_not_classic_pcap_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "capture.pcapng"
    path.write_bytes(bytes.fromhex("0a0d0d0a") + b"\x00" * 28)
    with pytest.raises(wire.PcapError, match=r"capture\.pcapng: magic 0a0d0d0a"):
        list(wire.read_segments(path))
