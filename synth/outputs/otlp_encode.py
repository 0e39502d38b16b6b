"""OTLP protobuf encoding of span records, written straight to wire bytes.

The SDK's encoder builds a ReadableSpan and then a protobuf message object per span,
attribute and event: ~70 µs per span here, three spans a run, which alone cost more than
the 15 % telemetry budget. This writes the same `ExportTraceServiceRequest` bytes
(opentelemetry-proto `trace.proto`, field numbers below) directly, and caches the encoded
form of attribute pairs and names, which repeat from run to run (check, environment,
method, status code...). tests/unit/test_otlp_encode.py checks the bytes decode to the
message the SDK's encoder builds from the same spans.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanKind, StatusCode

from synth.outputs.span_export import SpanRecord

# Tags: (field number << 3) | wire type (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32).
_ANY_STRING = b"\x0a"  # AnyValue.string_value = 1
_ANY_BOOL = b"\x10"  # AnyValue.bool_value = 2
_ANY_INT = b"\x18"  # AnyValue.int_value = 3
_ANY_DOUBLE = b"\x21"  # AnyValue.double_value = 4
_ANY_ARRAY = b"\x2a"  # AnyValue.array_value = 5 (ArrayValue.values = 1)
_KV_KEY = b"\x0a"  # KeyValue.key = 1
_KV_VALUE = b"\x12"  # KeyValue.value = 2
_SPAN_TRACE_ID = b"\x0a\x10"  # Span.trace_id = 1, 16 bytes
_SPAN_SPAN_ID = b"\x12\x08"  # Span.span_id = 2, 8 bytes
_SPAN_PARENT_ID = b"\x22\x08"  # Span.parent_span_id = 4, 8 bytes
_SPAN_NAME = b"\x2a"  # Span.name = 5
_SPAN_KIND = b"\x30"  # Span.kind = 6
_SPAN_START = b"\x39"  # Span.start_time_unix_nano = 7 (fixed64)
_SPAN_END = b"\x41"  # Span.end_time_unix_nano = 8 (fixed64)
_SPAN_ATTRIBUTE = b"\x4a"  # Span.attributes = 9
_SPAN_EVENT = b"\x5a"  # Span.events = 11
_SPAN_STATUS = b"\x7a"  # Span.status = 15
# Span.flags = 16 (fixed32): SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK (0x100), parent local —
# what the SDK's encoder writes for spans it started.
_SPAN_FLAGS = b"\x85\x01" + struct.pack("<I", 0x100)
_EVENT_TIME = b"\x09"  # Event.time_unix_nano = 1 (fixed64)
_EVENT_NAME = b"\x12"  # Event.name = 2
_EVENT_ATTRIBUTE = b"\x1a"  # Event.attributes = 3
_STATUS_MESSAGE = b"\x12"  # Status.message = 2
_STATUS_ERROR = b"\x18" + bytes([StatusCode.ERROR.value])  # Status.code = 3
_SCOPE_NAME = b"\x0a"  # InstrumentationScope.name = 1
_SCOPE_VERSION = b"\x12"  # InstrumentationScope.version = 2
_SCOPE_SPANS_SCOPE = b"\x0a"  # ScopeSpans.scope = 1
_SCOPE_SPANS_SPAN = b"\x12"  # ScopeSpans.spans = 2
_SCHEMA_URL = b"\x1a"  # ScopeSpans.schema_url = 3, ResourceSpans.schema_url = 3
_RESOURCE_ATTRIBUTE = b"\x0a"  # Resource.attributes = 1
_RESOURCE_SPANS_RESOURCE = b"\x0a"  # ResourceSpans.resource = 1
_RESOURCE_SPANS_SCOPE_SPANS = b"\x12"  # ResourceSpans.scope_spans = 2
_REQUEST_RESOURCE_SPANS = b"\x0a"  # ExportTraceServiceRequest.resource_spans = 1

# SpanKind proto values: the API's enum + 1 (0 is SPAN_KIND_UNSPECIFIED).
_KIND = {kind: _SPAN_KIND + bytes([kind.value + 1]) for kind in SpanKind}
_FIXED64 = struct.Struct("<Q").pack
_DOUBLE = struct.Struct("<d").pack
_SMALL = [bytes([n]) for n in range(128)]
CACHE_LIMIT = 20_000  # encoded attribute pairs and names kept; cleared when full


def varint(value: int) -> bytes:
    """Protobuf base-128 varint; negative numbers as their 64-bit two's complement."""
    if 0 <= value < 128:
        return _SMALL[value]
    value &= 0xFFFF_FFFF_FFFF_FFFF
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _delimited(tag: bytes, payload: bytes) -> bytes:
    return tag + varint(len(payload)) + payload


def _any_value(value: object) -> bytes:
    if isinstance(value, str):
        return _delimited(_ANY_STRING, value.encode())
    if isinstance(value, bool):  # before int: bool is an int
        return _ANY_BOOL + _SMALL[int(value)]
    if isinstance(value, int):
        return _ANY_INT + varint(value)
    if isinstance(value, float):
        return _ANY_DOUBLE + _DOUBLE(value)
    if isinstance(value, (list, tuple)):
        items = b"".join(_delimited(b"\x0a", _any_value(v)) for v in value)
        return _delimited(_ANY_ARRAY, items)
    return _delimited(_ANY_STRING, str(value).encode())


def key_value(key: str, value: object) -> bytes:
    """An encoded `KeyValue` message (without its own tag)."""
    return _delimited(_KV_KEY, key.encode()) + _delimited(_KV_VALUE, _any_value(value))


class SpanEncoder:
    """Encodes batches of `SpanRecord`s of one resource and scope into the body of an
    OTLP `ExportTraceServiceRequest`. Not thread-safe: one per export thread."""

    def __init__(self, resource: Resource, scope: InstrumentationScope) -> None:
        attributes = b"".join(
            _delimited(_RESOURCE_ATTRIBUTE, key_value(k, v)) for k, v in resource.attributes.items()
        )
        self._resource = _delimited(_RESOURCE_SPANS_RESOURCE, attributes)
        self._resource_schema = (
            _delimited(_SCHEMA_URL, resource.schema_url.encode()) if resource.schema_url else b""
        )
        encoded_scope = _delimited(_SCOPE_NAME, scope.name.encode())
        if scope.version:
            encoded_scope += _delimited(_SCOPE_VERSION, scope.version.encode())
        self._scope = _delimited(_SCOPE_SPANS_SCOPE, encoded_scope)
        self._scope_schema = (
            _delimited(_SCHEMA_URL, scope.schema_url.encode()) if scope.schema_url else b""
        )
        # Encoded pairs include their field's tag: one cache per tag.
        self._pairs: dict[bytes, dict[tuple[str, type, object], bytes]] = {
            _SPAN_ATTRIBUTE: {},
            _EVENT_ATTRIBUTE: {},
        }
        self._names: dict[str, bytes] = {}

    def _attributes(self, tag: bytes, attributes: Mapping[str, object]) -> list[bytes]:
        pairs = self._pairs[tag]
        out = []
        for key, value in attributes.items():
            cache_key = (key, value.__class__, value)
            encoded = pairs.get(cache_key)
            if encoded is None:
                if len(pairs) >= CACHE_LIMIT:
                    pairs.clear()
                try:
                    encoded = pairs[cache_key] = _delimited(tag, key_value(key, value))
                except TypeError:  # an unhashable value (a list): encode, don't cache
                    encoded = _delimited(tag, key_value(key, value))
            out.append(encoded)
        return out

    def _name(self, name: str) -> bytes:
        encoded = self._names.get(name)
        if encoded is None:
            if len(self._names) >= CACHE_LIMIT:
                self._names.clear()
            encoded = self._names[name] = _delimited(_SPAN_NAME, name.encode())
        return encoded

    def _span(self, record: SpanRecord) -> bytes:
        parts = [
            _SPAN_TRACE_ID,
            record.trace_id.to_bytes(16, "big"),
            _SPAN_SPAN_ID,
            record.span_id.to_bytes(8, "big"),
        ]
        if record.parent_id:
            parts += (_SPAN_PARENT_ID, record.parent_id.to_bytes(8, "big"))
        parts += (
            self._name(record.name),
            _KIND[record.kind],
            _SPAN_START,
            _FIXED64(record.start_ns),
            _SPAN_END,
            _FIXED64(record.end_ns),
        )
        parts += self._attributes(_SPAN_ATTRIBUTE, record.attributes)
        for name, when, attributes in record.events:
            event = b"".join(
                [
                    _EVENT_TIME,
                    _FIXED64(when),
                    _delimited(_EVENT_NAME, name.encode()),
                    *self._attributes(_EVENT_ATTRIBUTE, attributes),
                ]
            )
            parts.append(_delimited(_SPAN_EVENT, event))
        if record.error is None:
            parts.append(_SPAN_STATUS + b"\x00")  # present and empty: UNSET, as the SDK
        else:
            status = _STATUS_ERROR
            if record.error:
                status = _delimited(_STATUS_MESSAGE, record.error.encode()) + status
            parts.append(_delimited(_SPAN_STATUS, status))
        parts.append(_SPAN_FLAGS)
        return _delimited(_SCOPE_SPANS_SPAN, b"".join(parts))

    def encode(self, records: Sequence[SpanRecord]) -> bytes:
        """The serialized `ExportTraceServiceRequest` carrying `records`."""
        span = self._span
        scope_spans = b"".join([self._scope, *[span(r) for r in records], self._scope_schema])
        resource_spans = b"".join(
            [
                self._resource,
                _delimited(_RESOURCE_SPANS_SCOPE_SPANS, scope_spans),
                self._resource_schema,
            ]
        )
        return _delimited(_REQUEST_RESOURCE_SPANS, resource_spans)
