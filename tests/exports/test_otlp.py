"""Claude Code OTLP: logs and metrics in protobuf and JSON, and the receiver's answers."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AggregationTemporality,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from sqlalchemy import insert

from tokenwage.core.errors import InvalidInput, StoreUnavailable, UnknownModelPrice
from tokenwage.core.imported import ImportedUsage
from tokenwage.core.money import Money
from tokenwage.importers.otlp import SOURCE_LOGS, parse_otlp_logs, parse_otlp_metrics
from tokenwage.importers.otlp_receiver import handle_otlp, response_content_type
from tokenwage.storage.db import Database
from tokenwage.storage.schema import usage_records

from .conftest import NOW, book, person_ids, stored

PROTOBUF, JSON = "application/x-protobuf", "application/json"
T0 = int(datetime(2026, 1, 5, 9, 0, tzinfo=UTC).timestamp()) * 1_000_000_000


def attrs(**values: Any) -> list[KeyValue]:
    found = []
    for key, value in values.items():
        name = key.replace("__", ".")
        if isinstance(value, bool):
            any_value = AnyValue(bool_value=value)
        elif isinstance(value, int):
            any_value = AnyValue(int_value=value)
        elif isinstance(value, float):
            any_value = AnyValue(double_value=value)
        else:
            any_value = AnyValue(string_value=value)
        found.append(KeyValue(key=name, value=any_value))
    return found


def api_request(at_ns: int, **values: Any) -> LogRecord:
    return LogRecord(
        time_unix_nano=at_ns,
        body=AnyValue(string_value="claude_code.api_request"),
        attributes=attrs(event__name="api_request", **values),
    )


def logs_request() -> ExportLogsServiceRequest:
    ada = ResourceLogs(
        resource=Resource(attributes=attrs(service__name="claude-code", host__name="ada-mac")),
        scope_logs=[
            ScopeLogs(
                log_records=[
                    api_request(
                        T0,
                        user__email="ada@acme.test",
                        model="claude-sonnet-4-6",
                        input_tokens=100,
                        output_tokens="200",
                        cache_read_tokens=1000,
                        cache_creation_tokens=50,
                        cost_usd=0.0123,
                        duration_ms=2100,
                        request_id="req_011ada",
                        session__id="s-1",
                        event__sequence=1,
                    ),
                    LogRecord(
                        time_unix_nano=T0,
                        attributes=attrs(event__name="user_prompt", prompt_length=12),
                    ),
                ]
            )
        ],
    )
    bob = ResourceLogs(
        resource=Resource(attributes=attrs(user__account_uuid="acct-uuid-bob")),
        scope_logs=[
            ScopeLogs(
                log_records=[
                    api_request(
                        T0 + 10**9,
                        model="claude-opus-4-6",
                        input_tokens=7,
                        output_tokens=3,
                        cost_usd_micros=1500,
                        session__id="s-2",
                        event__sequence=7,
                    ),
                    api_request(
                        0,
                        model="claude-haiku-4-5-20251001",
                        input_tokens=1,
                        output_tokens=1,
                        request_id="req_011ci",
                        host__name="ci-runner",
                        event__timestamp="2026-01-05T09:00:02.500Z",
                    ),
                ]
            )
        ],
    )
    return ExportLogsServiceRequest(resource_logs=[ada, bob])


def test_api_request_events_become_records_from_protobuf() -> None:
    records = parse_otlp_logs(logs_request().SerializeToString(), PROTOBUF)
    assert [r.key for r in records] == ["req_011ada", "seq:s-2:7", "req_011ci"]
    ada, bob, ci = records
    assert (ada.usage.input_tokens, ada.usage.output_tokens) == (100, 200)
    assert (ada.usage.cache_read_tokens, ada.usage.cache_write_tokens) == (1000, 50)
    assert ada.reported_cost == Money.parse("0.0123")
    assert ada.upstream_request_id == "req_011ada" and ada.session_id == "s-1"
    assert [(i.kind.value, i.value) for i in ada.identities] == [
        ("email", "ada@acme.test"),
        ("hostname", "ada-mac"),
    ]
    assert ada.extra["duration_ms"] == "2100"
    assert bob.reported_cost == Money.parse("0.0015")
    assert bob.identities[0].value == "acct-uuid-bob"
    assert ci.used_utc.isoformat() == "2026-01-05T09:00:02.500000+00:00"
    assert ci.hostname == "ci-runner"


def test_json_encoding_gives_the_same_records() -> None:
    as_json = json_format.MessageToJson(logs_request()).encode()
    from_json = parse_otlp_logs(as_json, "application/json; charset=utf-8")
    assert from_json == parse_otlp_logs(logs_request().SerializeToString(), PROTOBUF)


def test_hand_written_otlp_json_with_string_int64_and_hex_ids_is_read() -> None:
    body = {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [{"key": "user.email", "value": {"stringValue": "bob@acme.test"}}]
                },
                "scopeLogs": [
                    {
                        "scope": {"name": "com.anthropic.claude_code.events"},
                        "logRecords": [
                            {
                                "timeUnixNano": str(T0),
                                "observedTimeUnixNano": str(T0),
                                "severityNumber": 9,
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "body": {"stringValue": "claude_code.api_request"},
                                "attributes": [
                                    {"key": "event.name", "value": {"stringValue": "api_request"}},
                                    {"key": "model", "value": {"stringValue": "claude-sonnet-4-6"}},
                                    {"key": "input_tokens", "value": {"intValue": "42"}},
                                    {"key": "output_tokens", "value": {"intValue": 8}},
                                    {"key": "cost_usd", "value": {"doubleValue": 0.5}},
                                    {"key": "request_id", "value": {"stringValue": "req_json"}},
                                    {
                                        "key": "tool_parameters",
                                        "value": {"kvlistValue": {"values": []}},
                                    },
                                ],
                                "aNewField": True,
                            }
                        ],
                    }
                ],
            }
        ]
    }
    (record,) = parse_otlp_logs(json.dumps(body).encode(), JSON)
    assert (record.key, record.usage.input_tokens, record.usage.output_tokens) == (
        "req_json",
        42,
        8,
    )
    assert record.identities[0].value == "bob@acme.test"


def test_a_malformed_api_request_is_named() -> None:
    request = ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                scope_logs=[
                    ScopeLogs(
                        log_records=[api_request(T0, input_tokens=-3, model="m"), api_request(T0)]
                    )
                ]
            )
        ]
    )
    with pytest.raises(InvalidInput) as caught:
        parse_otlp_logs(request.SerializeToString(), PROTOBUF)
    message = str(caught.value)
    assert message.startswith("2 OTLP item(s) cannot be booked")
    assert "log_records[0]: input_tokens -3 is not a count of tokens" in message
    assert "log_records[1]: no model attribute" in message


def test_undecodable_bodies_and_content_types_are_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="not a protobuf ExportLogsServiceRequest"):
        parse_otlp_logs(b"\xff\xff\xff", PROTOBUF)
    with pytest.raises(InvalidInput, match="not an OTLP/JSON"):
        parse_otlp_logs(b'{"resourceLogs": 3}', JSON)
    with pytest.raises(InvalidInput, match="send application/x-protobuf or application/json"):
        parse_otlp_logs(b"", "text/plain")


def sums(name: str, points: list[NumberDataPoint], *, delta: bool = True) -> Metric:
    temporality = (
        AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
        if delta
        else AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
    )
    return Metric(
        name=name,
        sum=Sum(data_points=points, aggregation_temporality=temporality, is_monotonic=True),
    )


def point(start: int, end: int, value: float | int, **values: Any) -> NumberDataPoint:
    p = NumberDataPoint(start_time_unix_nano=start, time_unix_nano=end, attributes=attrs(**values))
    if isinstance(value, int):
        p.as_int = value
    else:
        p.as_double = value
    return p


def metrics_request(*, delta: bool = True) -> ExportMetricsServiceRequest:
    t1, t2, t3 = T0, T0 + 60 * 10**9, T0 + 120 * 10**9
    who = {"user__email": "ada@acme.test", "session__id": "s-1", "model": "claude-sonnet-4-6"}
    tokens = [
        point(t1, t2, n, type=kind, **who)
        for kind, n in (("input", 100), ("output", 200), ("cacheRead", 1000), ("cacheCreation", 50))
    ]
    tokens += [point(t2, t3, 5.0, type="input", **who), point(t2, t3, 6, type="output", **who)]
    cost = [point(t1, t2, 0.25, **who), point(t2, t3, 0.01, **who)]
    other = Metric(name="claude_code.session.count")
    return ExportMetricsServiceRequest(
        resource_metrics=[
            ResourceMetrics(
                resource=Resource(attributes=attrs(host__name="ada-mac")),
                scope_metrics=[
                    ScopeMetrics(
                        metrics=[
                            sums("claude_code.token.usage", tokens, delta=delta),
                            sums("claude_code.cost.usage", cost, delta=delta),
                            other,
                        ]
                    )
                ],
            )
        ]
    )


@pytest.mark.parametrize("encoding", [PROTOBUF, JSON])
def test_delta_metrics_add_up_per_series_and_window(encoding: str) -> None:
    request = metrics_request()
    body = (
        request.SerializeToString()
        if encoding == PROTOBUF
        else json_format.MessageToJson(request).encode()
    )
    first, second = parse_otlp_metrics(body, encoding)
    assert (first.usage.input_tokens, first.usage.output_tokens) == (100, 200)
    assert (first.usage.cache_read_tokens, first.usage.cache_write_tokens) == (1000, 50)
    assert first.reported_cost == Money.parse("0.25")
    assert (second.usage.input_tokens, second.usage.output_tokens) == (5, 6)
    assert first.used_utc.isoformat() == "2026-01-05T09:01:00+00:00"
    assert first.identities[0].value == "ada@acme.test" and first.session_id == "s-1"
    assert first.key != second.key
    assert [r.key for r in parse_otlp_metrics(body, encoding)] == [first.key, second.key]


def test_cumulative_metrics_are_refused_with_the_setting_to_change() -> None:
    with pytest.raises(InvalidInput, match="OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"):
        parse_otlp_metrics(metrics_request(delta=False).SerializeToString(), PROTOBUF)


class Booker:
    """A ``book`` callback that records what it was given, or fails as told."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.batches: list[list[ImportedUsage]] = []
        self.fail = fail

    async def __call__(self, records: list[ImportedUsage]) -> int:
        if self.fail is not None:
            raise self.fail
        self.batches.append(records)
        return len(records)


async def test_logs_are_booked_and_answered_with_an_empty_response() -> None:
    booker = Booker()
    status, body = await handle_otlp(
        "/v1/logs", logs_request().SerializeToString(), PROTOBUF, booker
    )
    assert (status, body) == (200, b"")
    assert [len(b) for b in booker.batches] == [3]
    as_json = json_format.MessageToJson(logs_request()).encode()
    assert await handle_otlp("/v1/logs/", as_json, JSON, booker) == (200, b"{}")
    assert response_content_type("application/json; charset=utf-8") == JSON
    assert response_content_type(PROTOBUF) == PROTOBUF


async def test_gzip_bodies_are_inflated() -> None:
    booker = Booker()
    body = gzip.compress(logs_request().SerializeToString())
    status, _ = await handle_otlp("/v1/logs", body, PROTOBUF, booker, content_encoding="gzip")
    assert status == 200 and len(booker.batches[0]) == 3


async def test_metrics_are_acknowledged_but_booked_only_when_asked() -> None:
    booker = Booker()
    body = metrics_request().SerializeToString()
    assert await handle_otlp("/v1/metrics", body, PROTOBUF, booker) == (200, b"")
    assert booker.batches == []
    await handle_otlp("/v1/metrics", body, PROTOBUF, booker, book_metrics=True)
    assert [len(b) for b in booker.batches] == [2]


async def test_unbookable_items_are_a_partial_success() -> None:
    status, body = await handle_otlp(
        "/v1/metrics", metrics_request(delta=False).SerializeToString(), PROTOBUF, Booker()
    )
    response = ExportMetricsServiceResponse.FromString(body)
    assert status == 200 and response.partial_success.rejected_data_points == 8
    assert "temporality" in response.partial_success.error_message.lower()
    refused = Booker(UnknownModelPrice("no price for anthropic/claude-sonnet-4-6"))
    status, body = await handle_otlp(
        "/v1/logs", logs_request().SerializeToString(), PROTOBUF, refused
    )
    partial = ExportLogsServiceResponse.FromString(body).partial_success
    assert (status, partial.rejected_log_records) == (200, 3)
    assert "no price for anthropic/claude-sonnet-4-6" in partial.error_message


async def test_errors_are_statuses_exporters_understand() -> None:
    good = logs_request().SerializeToString()
    status, body = await handle_otlp("/v1/logs", b"{", JSON, Booker())
    assert status == 400 and json.loads(body)["code"] == 3
    status, body = await handle_otlp("/v1/logs", b"\xff\xff", PROTOBUF, Booker())
    assert status == 400 and b"not a protobuf" in body and body[:1] == b"\x08"
    assert (await handle_otlp("/v1/traces", good, PROTOBUF, Booker()))[0] == 404
    assert (await handle_otlp("/v1/logs", good, "text/plain", Booker()))[0] == 415
    down = Booker(StoreUnavailable("database is down"))
    assert (await handle_otlp("/v1/logs", good, PROTOBUF, down))[0] == 503


async def test_booked_through_import_usage_once_and_not_again_after_the_gateway(
    org: Database,
) -> None:
    with org.begin() as conn:  # the gateway metered Ada's request already
        conn.execute(
            insert(usage_records).values(
                request_id="gw-1",
                source="gateway",
                provider="anthropic",
                model="claude-sonnet-4-6",
                input_tokens=100,
                output_tokens=200,
                cache_read_tokens=1000,
                cache_write_tokens=50,
                cache_write_1h_tokens=0,
                reasoning_tokens=0,
                cost_nanousd=1,
                estimated=0,
                stream=1,
                status=200,
                used_utc=NOW,
                recorded_utc=NOW,
                upstream_request_id="req_011ada",
            )
        )
    summaries = []

    async def into_books(records: list[ImportedUsage]) -> int:
        summaries.append(book(org, records))
        return summaries[-1].new

    body = logs_request().SerializeToString()
    assert (await handle_otlp("/v1/logs", body, PROTOBUF, into_books))[0] == 200
    assert (await handle_otlp("/v1/logs", body, PROTOBUF, into_books))[0] == 200
    first, again = summaries
    assert (first.new, first.via_gateway, first.unattributed) == (2, 1, 0)
    assert (again.new, again.duplicates) == (0, 2)
    bob = person_ids(org)["bob@acme.test"]
    assert [r.person_id for r in stored(org, SOURCE_LOGS)] == [bob, bob]  # the resource's uuid
