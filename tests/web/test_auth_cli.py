"""``tokenwage login ...`` and ``tokenwage api-token ...`` through the real CLI."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from argon2 import extract_parameters
from sqlalchemy import select
from starlette.testclient import TestClient

from tests.cli_runner import Cli
from tests.web.conftest import Org_, email, sign_in
from tokenwage.storage.db import Database
from tokenwage.storage.schema import api_tokens, audit_log, logins
from tokenwage.web.accounts import authenticate


@pytest.fixture
def cli(db_url: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(db_url, capsys)


def test_set_password_from_stdin_then_sign_in(
    cli: Cli, db: Database, org: Org_, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a-brand-new-password-9\n"))
    ran = cli.ok("login", "set-password", email("moe"), "--password-stdin")
    assert "Password set for moe@acme.example (member)" in ran.out
    with db.begin() as conn:
        assert authenticate(conn, email("moe"), "a-brand-new-password-9", datetime.now(UTC))
        (stored,) = conn.execute(
            select(logins.c.password_hash).where(logins.c.person_id == org.ids["moe"])
        ).scalars()
        actions = [r.action for r in conn.execute(select(audit_log))]
    assert stored.startswith("$argon2id$") and "a-brand-new" not in stored
    assert extract_parameters(stored).time_cost == 1  # TOKENWAGE_WEB_ARGON2_* as the suite set
    assert "login.password_change" in actions
    sign_in(client, "moe", "a-brand-new-password-9")


def test_set_password_refuses_short_and_unknown(
    cli: Cli, org: Org_, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    ran = cli("login", "set-password", email("moe"), "--password-stdin")
    assert ran.code == 2 and "at least 12 characters" in ran.err
    monkeypatch.setattr("sys.stdin", io.StringIO("long-enough-password\n"))
    ran = cli("login", "set-password", "ghost@acme.example", "--password-stdin")
    assert ran.code == 3 and "ghost@acme.example" in ran.err


def test_disable_stops_sign_in(cli: Cli, db: Database, org: Org_, client: TestClient) -> None:
    sign_in(client, "oli")
    cli.ok("login", "disable", email("oli"))
    assert client.get("/account").status_code == 303
    with db.begin() as conn:
        assert (
            authenticate(conn, email("oli"), "a-long-enough-password-1", datetime.now(UTC)) is None
        )
    assert cli("login", "disable", "ghost@acme.example").code == 3


def test_api_token_create_list_revoke(
    cli: Cli, db: Database, org: Org_, client: TestClient
) -> None:
    made = cli.ok("api-token", "create", email("fay"), "--name", "nightly", "--expires-days", "30")
    raw = made.out.strip()
    assert raw.startswith("twa_") and "shown only this once" in made.err
    with db.begin() as conn:
        (row,) = conn.execute(select(api_tokens)).all()
    assert row.secret_sha256 != raw and raw not in row.secret_sha256 and row.expires_utc
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"})
    assert me.status_code == 200 and me.json()["role"] == "finance"
    listed = cli.ok("api-token", "list", "--json").json()
    assert [t["prefix"] for t in listed] == [row.prefix] and listed[0]["usable"] is True
    assert raw not in cli.ok("api-token", "list").out
    cli.ok("api-token", "revoke", row.prefix)
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"}).status_code == 401
    assert cli("api-token", "revoke", "twa_00000000").code == 3
    bad = cli("api-token", "create", email("fay"), "--name", " ")
    assert bad.code == 2 and "name" in bad.err
