"""synth's OTLP encoder writes the bytes the SDK's encoder would: both are decoded with
opentelemetry-proto and compared message to message, for hand-picked and generated spans."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanKind

from synth.outputs import otlp_encode
from synth.outputs.otlp_encode import SpanEncoder, varint
from synth.outputs.span_export import SpanRecord, to_readable
from synth.spans import AttrValue

RESOURCE = Resource.create({"service.name": "synth", "synth.location": "eu-1", "n": 3})
SCOPE = InstrumentationScope("synth", "1.2.3")


def sdk_message(
    records: list[SpanRecord],
    resource: Resource = RESOURCE,
    scope: InstrumentationScope = SCOPE,
) -> ExportTraceServiceRequest:
    return encode_spans(to_readable(records, resource, scope))


def ours(
    records: list[SpanRecord],
    resource: Resource = RESOURCE,
    scope: InstrumentationScope = SCOPE,
) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest.FromString(SpanEncoder(resource, scope).encode(records))


def run(error: str | None = None) -> list[SpanRecord]:
    trace = 0x0AF7651916CD43DD8448EB211C80319C
    client = SpanRecord(
        "GET",
        SpanKind.CLIENT,
        trace,
        0xB7AD6B7169203331,
        0x00F067AA0BA902B7,
        1_700_000_000_000_000_000,
        1_700_000_000_000_450_000,
        {
            "http.request.method": "GET",
            "url.full": "https://shop.example/cart?token=[REDACTED]",
            "server.port": 443,
            "http.response.status_code": 503,
            "synth.http.first_byte_s": 0.000125,
            "error.type": "503",
        },
    )
    client.error = ""
    step = SpanRecord(
        "add to cart ✓",
        SpanKind.INTERNAL,
        trace,
        0x00F067AA0BA902B7,
        0x1111111111111111,
        1_700_000_000_000_000_000,
        1_700_000_000_000_500_000,
        {"synth.step": "add to cart ✓"},
    )
    step.error = error
    if error is not None:
        step.events.append(
            (
                "synth.failure",
                1_700_000_000_000_499_000,
                {"synth.failure.type": "http_status", "synth.failure.message": error},
            )
        )
    root = SpanRecord(
        "checkout",
        SpanKind.INTERNAL,
        trace,
        0x1111111111111111,
        0,
        1_700_000_000_000_000_000,
        1_700_000_000_000_600_000,
        {"synth.check": "checkout", "synth.env": "production", "synth.deploy.id": "d-1"},
    )
    return [client, step, root]


def test_a_run_encodes_as_the_sdk_encodes_it() -> None:
    for error in (None, "", "expected status 200, got 503"):
        records = run(error)
        assert ours(records) == sdk_message(records)


def test_resource_and_scope_schema_urls_and_a_scope_without_version() -> None:
    resource = Resource(
        {"service.name": "synth"}, schema_url="https://opentelemetry.io/schemas/1.26.0"
    )
    scope = InstrumentationScope("synth", None, "https://example.com/scope")
    records = run()
    assert ours(records, resource, scope) == sdk_message(records, resource, scope)


def test_cached_pairs_do_not_confuse_equal_values_of_different_types() -> None:
    # True == 1 == 1.0 in Python; the encoded AnyValue must still keep each type.
    records = []
    for index, value in enumerate([True, 1, 1.0, "1", False, 0, 0.0]):
        records.append(SpanRecord("s", SpanKind.INTERNAL, 7, index + 1, 0, 1, 2, {"v": value}))
    encoder = SpanEncoder(RESOURCE, SCOPE)
    first = ExportTraceServiceRequest.FromString(encoder.encode(records))
    again = ExportTraceServiceRequest.FromString(encoder.encode(records))  # from the cache
    assert first == again == sdk_message(records)
    values = [s.attributes[0].value for s in first.resource_spans[0].scope_spans[0].spans]
    assert [v.WhichOneof("value") for v in values] == [
        "bool_value",
        "int_value",
        "double_value",
        "string_value",
        "bool_value",
        "int_value",
        "double_value",
    ]


def test_an_event_attribute_equal_to_a_span_attribute_keeps_its_own_field() -> None:
    record = SpanRecord("s", SpanKind.INTERNAL, 1, 1, 0, 1, 2, {"k": "v"})
    record.events.append(("e", 3, {"k": "v"}))
    encoder = SpanEncoder(RESOURCE, SCOPE)
    encoder.encode([record])
    assert ExportTraceServiceRequest.FromString(encoder.encode([record])) == sdk_message([record])


def test_the_cache_is_bounded() -> None:
    encoder = SpanEncoder(RESOURCE, SCOPE)
    limit = otlp_encode.CACHE_LIMIT
    for batch in range(3):
        records = [
            SpanRecord(f"n{i}", SpanKind.INTERNAL, 1, i + 1, 0, 1, 2, {"i": batch * limit + i})
            for i in range(limit // 2)
        ]
        assert ours(records) == sdk_message(records)
        encoder.encode(records)
        assert len(encoder._pairs) <= limit
        assert len(encoder._names) <= limit


def test_varint_matches_protobuf() -> None:
    assert varint(0) == b"\x00"
    assert varint(127) == b"\x7f"
    assert varint(300) == b"\xac\x02"
    assert varint(-1) == b"\xff" * 9 + b"\x01"


attr_values: st.SearchStrategy[AttrValue] = st.one_of(
    st.text(max_size=40),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
)
records_strategy = st.lists(
    st.builds(
        SpanRecord,
        name=st.text(max_size=30),
        kind=st.sampled_from(list(SpanKind)),
        trace_id=st.integers(min_value=1, max_value=2**128 - 1),
        span_id=st.integers(min_value=1, max_value=2**64 - 1),
        parent_id=st.integers(min_value=0, max_value=2**64 - 1),
        start_ns=st.integers(min_value=0, max_value=2**64 - 1),
        end_ns=st.integers(min_value=0, max_value=2**64 - 1),
        attributes=st.dictionaries(st.text(min_size=1, max_size=20), attr_values, max_size=8),
        events=st.lists(
            st.tuples(
                st.text(max_size=20),
                st.integers(min_value=0, max_value=2**64 - 1),
                st.dictionaries(st.text(min_size=1, max_size=10), attr_values, max_size=3),
            ),
            max_size=2,
        ),
        error=st.one_of(st.none(), st.text(max_size=30)),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=150, deadline=None)
@given(records_strategy)
def test_any_spans_encode_as_the_sdk_encodes_them(records: list[SpanRecord]) -> None:
    assert ours(records) == sdk_message(records)
