"""`tokenwage push` sends a laptop's new agent-log usage to the gateway's POST /v1/usage."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tokenwage.cli.app import main
from tokenwage.core.money import Money
from tokenwage.core.org import Org, Person, Team
from tokenwage.core.package import Package, Period, TokenAllowance
from tokenwage.gateway.config import GatewayConfig
from tokenwage.gateway.meter import open_meter
from tokenwage.gateway.testing import start_gateway
from tokenwage.services import books
from tokenwage.services.keys import create_key
from tokenwage.services.people import add_person, add_team
from tokenwage.storage.db import Database
from tokenwage.storage.ledger_repo import LedgerRepo
from tokenwage.storage.org_repo import OrgRepo
from tokenwage.storage.schema import usage_records

from .importers.logs import claude_line, write


def _seed(db: Database) -> str:
    now = datetime.now(UTC)
    with db.begin() as conn:
        OrgRepo(conn).save_org(Org("Acme", "UTC"))
        add_team(conn, Team("platform", "Platform"))
        add_person(conn, Person("ada@acme.example", "Ada", team_slug="platform"))
        OrgRepo(conn).add_package(
            "ada@acme.example",
            Package(
                base_salary=Money.parse(1),
                allowance=TokenAllowance(Money.parse(100), Period.MONTH),
                effective_from=(now - timedelta(days=40)).date(),
            ),
        )
        books.run_allowances(conn, now)
        _, raw = create_key(conn, email="ada@acme.example", name="laptop", now=now)
    return raw


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
