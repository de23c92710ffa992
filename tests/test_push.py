"""`tokenwage push` sends a laptop's new agent-log usage to the gateway's POST /v1/usage."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tokenwage.cli.app import main
from tokenwage.core.money import Money
from tokenwage.gateway.config import GatewayConfig
from tokenwage.gateway.meter import open_meter
from tokenwage.gateway.testing import start_gateway
from tokenwage.services.sandbox import one_person_org
from tokenwage.storage.db import Database
from tokenwage.storage.ledger_repo import LedgerRepo
from tokenwage.storage.schema import usage_records

from .importers.logs import claude_line, write


def _seed(db: Database) -> str:
    with db.begin() as conn:
        return one_person_org(conn, Money.parse(100), key_name="telemetry")


def _push(base: str, key: str, state: Path) -> int:
    args = ["push", "--server", base, "--key", key, "--source", "claude-code"]
    try:
        main([*args, "--state", str(state)])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


async def test_push_books_new_records_once_for_the_keys_owner(
    db: Database, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = _seed(db)
    claude = tmp_path / "claude"
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(claude))
    at = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    transcript = claude / "projects" / "-home-ada-proj" / "s1.jsonl"
    write(transcript, [claude_line("msg_1", "req_1", at), claude_line("msg_2", "req_2", at)])
    state = tmp_path / "state.db"
    meter = await open_meter(db_url, GatewayConfig())
    try:
        with start_gateway(GatewayConfig(), meter) as base:
            assert await asyncio.to_thread(_push, base, "twk_00000000_" + "x" * 43, state) == 8
            assert await asyncio.to_thread(_push, base, key, state) == 0
            assert await asyncio.to_thread(_push, base, key, state) == 0  # nothing new
            write(transcript, [claude_line("msg_3", "req_3", at)], mode="a")
            assert await asyncio.to_thread(_push, base, key, state) == 0
    finally:
        await meter.aclose()
    with db.begin() as conn:
        rows = conn.execute(select(usage_records)).all()
        balance = LedgerRepo(conn).balance("person:1")
    assert sorted(r.message_id for r in rows) == ["msg_1", "msg_2", "msg_3"]
    assert {(r.person_id, r.source, r.charge_mode) for r in rows} == {(1, "claude_code", "track")}
    assert balance == Money.parse(100).nanousd  # tracked, not charged
