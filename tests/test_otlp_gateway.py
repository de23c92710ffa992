"""Claude Code telemetry (OTLP/HTTP logs) sent to the gateway is booked with the real meter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from sqlalchemy import select

from tokenwage.core.money import Money
from tokenwage.gateway.config import GatewayConfig
from tokenwage.gateway.meter import open_meter
from tokenwage.gateway.testing import start_gateway
from tokenwage.services.sandbox import one_person_org
from tokenwage.storage.db import Database
from tokenwage.storage.ledger_repo import LedgerRepo
from tokenwage.storage.schema import usage_records

PROTOBUF = "application/x-protobuf"


def _kv(key: str, value: str | int) -> KeyValue:
    any_value = (
        AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=value)
    )
    return KeyValue(key=key, value=any_value)


def _export(at: datetime) -> bytes:
    record = LogRecord(
        time_unix_nano=int(at.timestamp()) * 1_000_000_000,
        body=AnyValue(string_value="claude_code.api_request"),
        attributes=[
            _kv("event.name", "api_request"),
            _kv("model", "claude-sonnet-4-6"),
            _kv("input_tokens", 100),
            _kv("output_tokens", 200),
            _kv("cache_read_tokens", 1000),
            _kv("request_id", "req_otlp_1"),
            _kv("session.id", "s-1"),
        ],
    )
    resource = Resource(attributes=[_kv("service.name", "claude-code")])
    request = ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(resource=resource, scope_logs=[ScopeLogs(log_records=[record])])
        ]
    )
    return request.SerializeToString()


def _seed(db: Database) -> str:
    with db.begin() as conn:
        return one_person_org(conn, Money.parse(100), key_name="telemetry")


async def test_claude_code_logs_are_tracked_for_the_keys_owner(db: Database, db_url: str) -> None:
    key = _seed(db)
    body = _export(datetime.now(UTC) - timedelta(minutes=5))
    meter = await open_meter(db_url, GatewayConfig())
    try:
        with start_gateway(GatewayConfig(), meter) as base:
            async with aiohttp.ClientSession() as s:
                headers = {"content-type": PROTOBUF}
                async with s.post(f"{base}/v1/logs", data=body, headers=headers) as r:
                    assert r.status == 401  # no key, nothing booked
                headers["authorization"] = f"Bearer {key}"
                for _ in range(2):  # an exporter's retry books nothing twice
                    async with s.post(f"{base}/v1/logs", data=body, headers=headers) as r:
                        assert r.status == 200, await r.text()
                        assert r.headers["content-type"] == PROTOBUF
    finally:
        await meter.aclose()
    with db.begin() as conn:
        rows = conn.execute(select(usage_records)).all()
        balance = LedgerRepo(conn).balance("person:1")
    assert len(rows) == 1
    (row,) = rows
    assert (row.person_id, row.source, row.charge_mode) == (1, "claude_code_otel", "track")
    assert (row.input_tokens, row.output_tokens, row.cache_read_tokens) == (100, 200, 1000)
    assert row.upstream_request_id == "req_otlp_1"
    assert balance == Money.parse(100).nanousd  # tracked, not charged
