"""The command line through its real entry point, on SQLite and PostgreSQL.

Commands run in-process through :func:`tokenwage.cli.app.main` (exit codes from
``SystemExit``, output from capsys); a few run the installed console script in a subprocess
to prove the entry point itself works.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text

from tests.cli_runner import Cli
from tokenwage import __version__
from tokenwage.core.ledger import Entry, EntryDraft, EntryKind, entry_hash
from tokenwage.core.money import Money
from tokenwage.core.org import Org
from tokenwage.storage.db import Database
from tokenwage.storage.ledger_repo import LedgerRepo
from tokenwage.storage.org_repo import OrgRepo, person_account, pool_account
from tokenwage.storage.schema import accounts, audit_log, ledger_entries, org, people, teams

BERLIN = "Europe/Berlin"
RUN_AT = "2026-03-15T12:00:00Z"  # allowance runs in these tests happen "as of" this instant


@pytest.fixture
def cli(db_url: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(db_url, capsys)


@pytest.fixture
def offline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Cli]:
    """For commands that need no database: it must not even be created."""
    path = tmp_path / "untouched.db"
    yield Cli(f"sqlite:///{path}", capsys)
    assert not path.exists()


@pytest.fixture
def acme(cli: Cli) -> Cli:
    """An organisation in Berlin: team platform (with a pool), Ada (manager) and Bob."""
    cli.ok("init", "--org", "Acme", "--timezone", BERLIN)
    cli.ok("team", "add", "platform")
    cli.ok("team", "pool", "platform", "--amount", "300", "--from", "2026-02-01")
    cli.ok(
        "person", "add", "ada@acme.io", "--name", "Ada", "--team", "platform", "--role", "manager"
    )
    cli.ok(
        "person", "add", "bob@acme.io", "--name", "Bob", "--team", "platform",
        "--manager", "ada@acme.io",
    )  # fmt: skip
    cli.ok("package", "set", "bob@acme.io", "--salary", "150000", "--allowance", "500",
           "--from", "2026-01-01")  # fmt: skip
    return cli


def count(db: Database, table: Any) -> int:
    with db.begin() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


# -- init, teams, people ------------------------------------------------------------------
def test_init_records_the_org_and_its_time_zone(cli: Cli, db: Database) -> None:
    ran = cli.ok("init", "--org", "Acme Labs", "--timezone", BERLIN)
    assert "Acme Labs" in ran.out and BERLIN in ran.out
    with db.begin() as conn:
        assert OrgRepo(conn).get_org() == Org("Acme Labs", BERLIN)
    cli.ok("init", "--org", "Acme GmbH", "--timezone", "UTC")  # re-running updates it
    with db.begin() as conn:
        assert OrgRepo(conn).get_org() == Org("Acme GmbH", "UTC")
    assert count(db, org) == 1


def test_init_refuses_an_unknown_time_zone_before_writing(cli: Cli, db: Database) -> None:
    ran = cli("init", "--org", "Acme", "--timezone", "Mars/Olympus")
    assert ran.code == 2
    assert "Mars/Olympus" in ran.err
    assert count(db, org) == 0


def test_init_with_a_bad_zone_creates_no_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "new.db"
    assert Cli(f"sqlite:///{path}", capsys)("init", "--timezone", "Nowhere/Land").code == 2
    assert not path.exists()


def test_a_database_that_is_not_initialised_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ran = Cli(f"sqlite:///{tmp_path / 'empty.db'}", capsys)("team", "list")
    assert ran.code == 7
    assert "tokenwage init" in ran.err


def test_team_add_and_list(cli: Cli) -> None:
    cli.ok("init", "--org", "Acme")
    cli.ok("team", "add", "platform")
    cli.ok("team", "add", "ml-infra", "--name", "ML Infrastructure", "--parent", "platform")
    assert cli.ok("team", "list", "--json").json() == [
        {"slug": "ml-infra", "name": "ML Infrastructure", "parent": "platform"},
        {"slug": "platform", "name": "Platform", "parent": None},
    ]
    table = cli.ok("team", "list").out
    assert "ML Infrastructure" in table and "2 teams" in table
    duplicate = cli("team", "add", "platform")
    assert duplicate.code == 4 and "platform" in duplicate.err
    assert cli("team", "add", "x", "--parent", "nope").code == 3
    bad = cli("team", "add", "Bad Team")
    assert bad.code == 2 and "Bad Team" in bad.err
    assert len(cli.ok("team", "list", "--json").json()) == 2


def test_person_add_and_list(cli: Cli) -> None:
    cli.ok("init", "--org", "Acme")
    cli.ok("team", "add", "platform")
    cli.ok("team", "add", "sales")
    cli.ok("person", "add", "Ada@Acme.io", "--name", "Ada Lovelace", "--team", "platform",
           "--role", "manager")  # fmt: skip
    cli.ok("person", "add", "bob@acme.io", "--name", "Bob", "--team", "platform",
           "--manager", "ada@acme.io", "--level", "L4", "--start", "2026-01-05",
           "--end", "2026-12-31")  # fmt: skip
    cli.ok("person", "add", "cy@acme.io", "--name", "Cy", "--team", "sales", "--role", "finance")
    keys = ("email", "name", "team", "manager", "level", "role", "start_date", "end_date")
    listed = cli.ok("person", "list", "--json").json()
    assert [set(p) for p in listed] == [set(keys)] * 3
    assert [tuple(p[k] for k in keys) for p in listed] == [
        ("ada@acme.io", "Ada Lovelace", "platform", None, None, "manager", None, None),
        ("bob@acme.io", "Bob", "platform", "ada@acme.io", "L4", "member", "2026-01-05",
         "2026-12-31"),
        ("cy@acme.io", "Cy", "sales", None, None, "finance", None, None),
    ]  # fmt: skip
    in_platform = cli.ok("person", "list", "--team", "platform", "--json").json()
    assert [p["email"] for p in in_platform] == ["ada@acme.io", "bob@acme.io"]
    assert "3 people" in cli.ok("person", "list").out


BAD_PEOPLE = [
    (["BOB@acme.io", "--name", "Bob Again"], 4, "bob@acme.io"),
    (["not-an-email", "--name", "X"], 2, "not-an-email"),
    (["x@acme.io", "--name", "X", "--manager", "ghost@acme.io"], 3, "ghost@acme.io"),
    (["x@acme.io", "--name", "X", "--team", "nope"], 3, "nope"),
    (["x@acme.io", "--name", "X", "--start", "2026-05-01", "--end", "2026-04-30"], 2, "2026-04-30"),
    (["x@acme.io", "--name", "X", "--start", "May 1st"], 2, "May 1st"),
    (["x@acme.io", "--name", "X" * 201], 2, "limit is 200"),
    (["x@acme.io", "--name", "X", "--level", "L" * 65], 2, "limit is 64"),
    (["x@acme.io", "--name", "X", "--role", "wizard"], 2, "wizard"),
]


def test_person_add_refuses_bad_people(cli: Cli) -> None:
    cli.ok("init", "--org", "Acme")
    cli.ok("person", "add", "bob@acme.io", "--name", "Bob")
    for args, code, named in BAD_PEOPLE:
        ran = cli("person", "add", *args)
        assert (ran.code, named in ran.err) == (code, True), f"{args}: {ran.err}"
    assert [p["email"] for p in cli.ok("person", "list", "--json").json()] == ["bob@acme.io"]


def test_user_text_is_shown_as_written_not_as_markup(cli: Cli) -> None:
    """Names and reasons with [brackets] are data: a grant that was booked must not end in a
    traceback, and a table must not swallow part of a name."""
    assert "Acme [/x]" in cli.ok("init", "--org", "Acme [/x]").out
    cli.ok("team", "add", "rnd", "--name", "R&D [/core]")
    assert "R&D [/core]" in cli.ok("team", "list").out
    cli.ok("person", "add", "q@acme.io", "--name", "Q [red]Quux", "--level", "L[/b]")
    table = cli.ok("person", "list").out
    assert "Q [red]Quux" in table and "L[/b]" in table
    assert (
        "[/b] bonus" in cli.ok("grant", "q@acme.io", "--amount", "5", "--reason", "[/b] bonus").out
    )
    assert "q@acme.io" in cli.ok("balance").out


# -- packages -----------------------------------------------------------------------------
PACKAGE_2026 = {
    "effective_from": "2026-01-01",
    "effective_to": None,
    "base_salary_usd": "150000",
    "bonus_target_usd": "0",
    "equity_per_year_usd": "0",
    "benefits_overhead_usd": "0",
    "allowance_usd": "500",
    "allowance_period": "month",
    "rollover": "none",
    "expiry_days": None,
    "cap": "hard",
    "overdraft_usd": "0",
}


def test_package_set_and_show(acme: Cli) -> None:
    assert acme.ok("package", "show", "bob@acme.io", "--json").json() == [PACKAGE_2026]
    acme.ok("package", "set", "ada@acme.io", "--salary", "210000.50", "--allowance", "40",
            "--period", "workday", "--bonus", "20000", "--equity", "50000", "--overhead", "15000",
            "--rollover", "capped:3", "--expiry-days", "30", "--cap", "soft", "--overdraft", "25",
            "--from", "2026-02-01", "--to", "2026-12-31")  # fmt: skip
    assert acme.ok("package", "show", "ada@acme.io", "--json").json() == [
        {
            "effective_from": "2026-02-01",
            "effective_to": "2026-12-31",
            "base_salary_usd": "210000.5",
            "bonus_target_usd": "20000",
            "equity_per_year_usd": "50000",
            "benefits_overhead_usd": "15000",
            "allowance_usd": "40",
            "allowance_period": "workday",
            "rollover": "capped:3",
            "expiry_days": 30,
            "cap": "soft",
            "overdraft_usd": "25",
        }
    ]
    assert "Packages of ada@acme.io" in acme.ok("package", "show", "ada@acme.io").out


def test_overlapping_packages_are_refused_naming_the_dates(acme: Cli) -> None:
    ran = acme("package", "set", "bob@acme.io", "--salary", "160000", "--allowance", "800",
               "--from", "2026-03-01", "--to", "2026-06-30")  # fmt: skip
    assert ran.code == 4
    message = " ".join(ran.err.split())
    assert "2026-01-01" in message and "open-ended" in message  # the package in the way
    assert "2026-03-01" in message and "2026-06-30" in message  # the one refused
    assert "--supersede" in message
    assert acme.ok("package", "show", "bob@acme.io", "--json").json() == [PACKAGE_2026]


def test_supersede_ends_the_open_package_the_day_before(acme: Cli) -> None:
    acme.ok("package", "set", "bob@acme.io", "--salary", "160000", "--allowance", "800",
            "--from", "2026-03-01", "--supersede")  # fmt: skip
    shown = acme.ok("package", "show", "bob@acme.io", "--json").json()
    assert [(p["effective_from"], p["effective_to"], p["allowance_usd"]) for p in shown] == [
        ("2026-01-01", "2026-02-28", "500"),
        ("2026-03-01", None, "800"),
    ]
    # superseding cannot reach back before the open package starts
    ran = acme("package", "set", "bob@acme.io", "--salary", "1", "--allowance", "1",
               "--from", "2026-02-15", "--supersede")  # fmt: skip
    assert ran.code == 4
    assert acme.ok("package", "show", "bob@acme.io", "--json").json() == shown


BAD_PACKAGES = [
    (["--salary", "lots"], "--salary"),
    (["--salary", "-1"], "base salary"),
    (["--allowance", "2000000"], "extra zero"),
    (["--overdraft", "1.0000000001"], "nano-dollar"),
    (["--rollover", "sometimes"], "sometimes"),
    (["--expiry-days", "0"], "expiry_days"),
    (["--from", "2026-13-01"], "2026-13-01"),
    (["--to", "2026-12-31"], "before it starts"),
    (["--period", "fortnight"], "fortnight"),
]


def test_package_set_refuses_bad_values(acme: Cli) -> None:
    for args, named in BAD_PACKAGES:
        values = {"--salary": "100000", "--allowance": "100", "--from": "2027-01-01"}
        values.update(zip(args[::2], args[1::2], strict=True))
        ran = acme("package", "set", "ada@acme.io", *(x for kv in values.items() for x in kv))
        assert (ran.code, named in ran.err) == (2, True), f"{args}: {ran.err}"
    assert acme("package", "set", "ghost@acme.io", "--salary", "1", "--allowance", "1",
                "--from", "2027-01-01").code == 3  # fmt: skip
    assert acme.ok("package", "show", "ada@acme.io", "--json").json() == []


# -- grants, allowances, balances -----------------------------------------------------------
def balances(cli: Cli) -> dict[str, dict[str, Any]]:
    return {b["email"]: b for b in cli.ok("balance", "--json").json()}


def test_grant_to_a_person_and_to_a_team_pool(acme: Cli, db: Database) -> None:
    assert "$250.00" in acme.ok("grant", "bob@acme.io", "--amount", "250", "--reason", "spot").out
    acme.ok("grant", "--team", "platform", "--amount", "$1,000.25", "--reason", "quarter top-up")
    got = balances(acme)
    assert got["bob@acme.io"]["balance_usd"] == "250"
    assert got["bob@acme.io"]["pool_balance_usd"] == "1000.25"
    assert got["ada@acme.io"]["balance_usd"] == "0"
    with db.begin() as conn:
        repo = LedgerRepo(conn)
        pool = repo.entries(pool_account("platform"))
        bob_id = OrgRepo(conn).person_id("bob@acme.io")
        bob = repo.entries(person_account(bob_id))
    assert [(e.kind, e.amount_nanousd, e.memo) for e in pool] == [
        (EntryKind.GRANT, 1_000_250_000_000, "quarter top-up")
    ]
    assert [(e.kind, e.amount_nanousd, e.meta["source"]) for e in bob] == [
        (EntryKind.GRANT, 250_000_000_000, "one-off")
    ]


def test_changes_made_from_the_cli_are_audited(acme: Cli, db: Database) -> None:
    acme.ok("grant", "bob@acme.io", "--amount", "250", "--reason", "spot")
    prefix = acme.ok("keys", "create", "bob@acme.io", "--json").json()["prefix"]
    acme.ok("keys", "revoke", prefix)
    acme("grant", "ghost@acme.io", "--amount", "5", "--reason", "x")  # refused: no entry
    with db.begin() as conn:
        rows = conn.execute(
            select(audit_log.c.actor, audit_log.c.action, audit_log.c.detail).order_by(
                audit_log.c.id
            )
        ).all()
    actions = [r.action for r in rows]
    assert actions == ["package.set", "grant", "key.create", "key.revoke"]
    assert all(r.actor.startswith("cli") for r in rows)
    grant = json.loads(rows[1].detail)
    assert (grant["person"], grant["amount_nanousd"], grant["reason"]) == (
        "bob@acme.io",
        250_000_000_000,
        "spot",
    )
    assert json.loads(rows[0].detail)["allowance_usd"] == "500"


def test_grant_refuses_bad_amounts_and_unknown_targets(acme: Cli, db: Database) -> None:
    for amount in ("-5", "0", "0.00", "1e12", "1000000.01", "abc", "0.0000000001", "NaN"):
        ran = acme("grant", "bob@acme.io", "--amount", amount, "--reason", "typo")
        assert (ran.code, ran.err[:6]) == (2, "error:"), f"--amount {amount}: {ran.err}"
    ran = acme("grant", "ghost@acme.io", "--amount", "5", "--reason", "x")
    assert ran.code == 3 and "ghost@acme.io" in ran.err
    ran = acme("grant", "--team", "nope", "--amount", "5", "--reason", "x")
    assert ran.code == 3 and "nope" in ran.err
    assert acme("grant", "--amount", "5", "--reason", "x").code == 2  # no one to grant to
    both = acme("grant", "bob@acme.io", "--team", "platform", "--amount", "5", "--reason", "x")
    assert both.code == 2
    assert acme("grant", "bob@acme.io", "--amount", "5", "--reason", "  ").code == 2
    assert acme("grant", "bob@acme.io", "--amount", "5", "--reason", "x",
                "--expires", "2020-01-01").code == 2  # fmt: skip
    assert count(db, ledger_entries) == 0


def test_allowances_run_is_idempotent(acme: Cli, db: Database) -> None:
    first = acme.ok("allowances", "run", "--now", RUN_AT).out
    # Bob: January and February granted and expired, March granted; the pool (from
    # February): February granted and expired, March granted. Ada has no package.
    assert "3 accounts: 5 grants, 3 expiries, 8 entries written" in first
    again = acme.ok("allowances", "run", "--now", RUN_AT).out
    assert "0 entries written" in again
    assert count(db, ledger_entries) == 8
    got = balances(acme)
    assert got["bob@acme.io"]["balance_usd"] == "500"
    assert got["bob@acme.io"]["pool_balance_usd"] == "300"


def test_allowances_run_refuses_to_book_out_of_order(acme: Cli, db: Database) -> None:
    """Statements are posted by recording time: a run "as of" before the newest entry, or in
    the future, would make later statements fail their seal."""
    acme.ok("grant", "bob@acme.io", "--amount", "5", "--reason", "today")
    early = acme("allowances", "run", "--now", RUN_AT)
    assert early.code == 2 and "before the last ledger entry" in " ".join(early.err.split())
    future = datetime.now(UTC) + timedelta(days=2)
    late = acme("allowances", "run", "--now", future.isoformat())
    assert late.code == 2 and "future" in late.err
    assert acme("allowances", "run", "--now", "yesterday").code == 2
    assert count(db, ledger_entries) == 1


def test_balance_json_values_are_exact_strings(acme: Cli) -> None:
    acme.ok("allowances", "run", "--now", RUN_AT)
    acme.ok("grant", "bob@acme.io", "--amount", "12.345678901", "--reason", "exact")
    got = balances(acme)
    bob = got["bob@acme.io"]
    next_refill = datetime.fromisoformat(bob.pop("next_refill_utc"))
    assert bob == {
        "email": "bob@acme.io",
        "team": "platform",
        "balance_usd": "512.345678901",
        "pool_balance_usd": "300",
        "spendable_usd": "812.345678901",
        "allowance_usd": "500",
        "allowance_period": "month",
    }
    # the next refill is the coming 1st of the month at midnight in Berlin
    today = datetime.now(ZoneInfo(BERLIN)).date()
    first = date(today.year + today.month // 12, today.month % 12 + 1, 1)
    expected = datetime(first.year, first.month, 1, tzinfo=ZoneInfo(BERLIN))
    assert next_refill == expected
    assert got["ada@acme.io"]["allowance_usd"] is None
    assert got["ada@acme.io"]["next_refill_utc"] is None
    assert got["ada@acme.io"]["spendable_usd"] == "300"
    one = acme.ok("balance", "bob@acme.io", "--json").json()
    assert [b["email"] for b in one] == ["bob@acme.io"]
    assert acme("balance", "ghost@acme.io").code == 3


# -- statements ---------------------------------------------------------------------------
def test_statement_in_text_json_and_html(acme: Cli, tmp_path: Path) -> None:
    acme.ok("person", "add", "cleo@acme.io", "--name", "Cleo <Ops> & Co")
    acme.ok("package", "set", "cleo@acme.io", "--salary", "1", "--allowance", "10",
            "--from", "2026-03-01")  # fmt: skip
    acme.ok("allowances", "run", "--now", RUN_AT)
    st = acme.ok("statement", "bob@acme.io", "--month", "2026-03", "--format", "json").json()
    assert st["period"] == {
        "year": 2026,
        "month": 3,
        "tz": BERLIN,
        "start_utc": "2026-02-28T23:00:00.000000Z",
        "end_utc": "2026-03-31T22:00:00.000000Z",  # summer time began on the 29th
    }
    assert st["person"] == {"name": "Bob", "email": "bob@acme.io"}
    assert st["opening_balance_usd"] == "0"
    assert st["grants"]["allowance_total_usd"] == "1500"
    assert st["expired_total_usd"] == "-1000"
    assert st["closing_balance_usd"] == "500"
    assert st["closing_balance_nanousd"] == 500_000_000_000
    assert (st["entry_count"], st["first_seq"], st["last_seq"]) == (5, 1, 5)
    exported = {(e["account"], e["seq"]): e for e in acme.ok("export", "--format", "json").json()}
    assert st["seal_hash"] == exported[(st["account"], 5)]["hash"]

    text_st = acme.ok("statement", "bob@acme.io", "--month", "2026-03").out
    assert "TOKEN ALLOWANCE STATEMENT  March 2026" in text_st
    assert any(line.split()[-2:] == ["balance", "$500.00"] for line in text_st.splitlines())
    assert st["seal_hash"] in text_st

    html_st = acme.ok("statement", "cleo@acme.io", "--month", "2026-03", "--format", "html").out
    assert html_st.lstrip().startswith("<!DOCTYPE html>")
    assert "Cleo &lt;Ops&gt; &amp; Co" in html_st and "<Ops>" not in html_st
    assert "March 2026" in html_st

    out = tmp_path / "feb.json"
    acme.ok("statement", "bob@acme.io", "--month", "2026-02", "--format", "json", "-o", str(out))
    feb = json.loads(out.read_text(encoding="utf-8"))  # recorded in March: February is empty
    assert (feb["entry_count"], feb["closing_balance_usd"]) == (0, "0")

    for args, code in [
        (["bob@acme.io", "--month", "2026-13"], 2),
        (["bob@acme.io", "--month", "March"], 2),
        (["bob@acme.io", "--format", "pdf"], 2),
        (["ghost@acme.io", "--month", "2026-03"], 3),
    ]:
        ran = acme("statement", *args)
        assert (ran.code, ran.out) == (code, ""), f"{args}: {ran.err}"


# -- ledger verify and export ---------------------------------------------------------------
def test_ledger_verify_passes_then_names_the_edited_entry(acme: Cli, db: Database) -> None:
    acme.ok("allowances", "run", "--now", RUN_AT)
    assert "OK" in acme.ok("ledger", "verify").out
    clean = acme.ok("ledger", "verify", "--json").json()
    assert clean == {"ok": True, "entries": 8, "accounts": 3, "problems": []}
    with db.begin() as conn:
        bob = person_account(OrgRepo(conn).person_id("bob@acme.io"))
        victim = LedgerRepo(conn).entries(bob)[2]
        conn.execute(
            text("UPDATE ledger_entries SET amount_nanousd = 1 WHERE id = :id"), {"id": victim.id}
        )
    ran = acme("ledger", "verify")
    assert ran.code == 6
    assert f"entry id {victim.id} (seq 3)" in ran.err
    assert bob in ran.err
    as_json = acme("ledger", "verify", "--json")
    assert as_json.code == 6
    report = as_json.json()
    assert report["ok"] is False
    assert report["problems"][0] == {
        "account": bob,
        "entry_id": victim.id,
        "seq": 3,
        "what": "content does not match its hash (edited)",
    }


def entry_from_export(row: dict[str, Any]) -> Entry:
    """Rebuild an entry from an export row, the way an auditor would."""

    def instant(value: str | None) -> datetime | None:
        return datetime.fromisoformat(value) if value else None

    meta = row["meta"] if isinstance(row["meta"], dict) else json.loads(row["meta"])
    return Entry(
        account=row["account"],
        seq=int(row["seq"]),
        kind=EntryKind(row["kind"]),
        amount_nanousd=int(row["amount_nanousd"]),
        effective_utc=datetime.fromisoformat(row["effective_utc"]),
        recorded_utc=datetime.fromisoformat(row["recorded_utc"]),
        ref=row["ref"],
        memo=row["memo"],
        expires_utc=instant(row["expires_utc"]),
        meta=meta,
        prev_hash=row["prev_hash"],
        hash=row["hash"],
        id=int(row["id"]),
    )


def test_export_csv_and_json_carry_every_entry_with_its_hashes(
    acme: Cli, db: Database, tmp_path: Path
) -> None:
    acme.ok("allowances", "run", "--now", RUN_AT)
    acme.ok("grant", "bob@acme.io", "--amount", "0.000000001", "--reason", 'one "nano", dollar')
    with db.begin() as conn:
        stored = {e.id: e for e in LedgerRepo(conn).iter_all_entries()}
    assert len(stored) == 9

    from_csv = list(csv.DictReader(io.StringIO(acme.ok("export", "--format", "csv").out)))
    from_json = acme.ok("export", "--format", "json").json()
    assert {int(r["id"]) for r in from_csv} == set(stored) == {r["id"] for r in from_json}
    for csv_row, json_row in zip(from_csv, from_json, strict=True):
        rebuilt, again = entry_from_export(csv_row), entry_from_export(json_row)
        assert rebuilt == again == stored[rebuilt.id]
        assert entry_hash(rebuilt.canonical()) == rebuilt.hash  # an auditor can re-hash it
        assert json_row["amount_usd"] == Money(rebuilt.amount_nanousd).exact()
    nano = [r for r in from_json if r["amount_nanousd"] == 1]
    assert [(r["amount_usd"], r["memo"]) for r in nano] == [("0.000000001", 'one "nano", dollar')]
    chains: dict[str, str] = {}
    for r in from_json:  # grouped by account, in seq order, each linking to the one before
        assert r["prev_hash"] == chains.get(r["account"], "0" * 64)
        chains[r["account"]] = r["hash"]

    path = tmp_path / "ledger.csv"
    acme.ok("export", "--format", "csv", "--output", str(path))
    assert path.read_text(encoding="utf-8") == acme.ok("export", "--format", "csv").out
    recent = acme.ok("export", "--format", "json", "--since", "2026-03-16").json()
    assert [r["memo"] for r in recent] == ['one "nano", dollar']
    assert acme.ok("export", "--format", "json", "--until", "2026-03-15").json() == []
    assert acme("export", "--format", "xml").code == 2


# -- offers and cost ----------------------------------------------------------------------
OFFER_A = "A: salary=180000, allowance=200/workday"
OFFER_B = "B: salary=200000, allowance=3000/month"


def test_offer_compare_json_matches_hand_checked_numbers(offline: Cli) -> None:
    ran = offline.ok("offer", "compare", "--offer", OFFER_A, "--offer", OFFER_B,
                 "--utilisation", "60%", "--json")  # fmt: skip
    # A: $200 x 260 workdays = $52,000 a year; committed 180,000 + 52,000 = 232,000;
    #    expected 180,000 + 60% of 52,000 = 211,200.
    # B: $3,000 x 12 = $36,000; committed 236,000; expected 200,000 + 21,600 = 221,600.
    rows = ran.json()
    assert [r["name"] for r in rows] == ["A", "B"]
    assert {(k, r[k]) for r in rows for k in ("bonus", "equity", "overhead")} == {
        (k, "0") for k in ("bonus", "equity", "overhead")
    }
    keys = ("salary", "allowance_per_period", "period", "allowance_per_year", "annual_committed",
            "expected_annual", "committed_vs_first", "expected_vs_first")  # fmt: skip
    assert [set(r) for r in rows] == [{"name", "bonus", "equity", "overhead", *keys}] * 2
    assert [tuple(r[k] for k in keys) for r in rows] == [
        ("180000", "200", "workday", "52000", "232000", "211200", "0", "0"),
        ("200000", "3000", "month", "36000", "236000", "221600", "4000", "10400"),
    ]
    table = offline.ok("offer", "compare", "--offer", OFFER_A, "--offer", OFFER_B,
                   "--utilisation", "0.6").out  # fmt: skip
    assert "$211,200" in table and "$221,600" in table and "$10,400" in table


def test_offer_compare_includes_a_persons_current_package(acme: Cli) -> None:
    rows = acme.ok("offer", "compare", "--offer", OFFER_A, "--person", "bob@acme.io",
                   "--utilisation", "50%", "--json").json()  # fmt: skip
    bob = rows[1]
    # $150,000 + $500 x 12 = $156,000 committed; expected 150,000 + 3,000
    assert (bob["name"], bob["annual_committed"], bob["expected_annual"]) == (
        "bob@acme.io",
        "156000",
        "153000",
    )
    assert rows[1]["expected_vs_first"] == "-53000"  # 153,000 - (180,000 + 26,000)
    assert acme("offer", "compare", "--offer", OFFER_A, "--person", "ada@acme.io").code == 4


@pytest.mark.parametrize(
    "args",
    [
        ["--offer", OFFER_A],  # one offer: nothing to compare
        ["--offer", OFFER_A, "--offer", "A: salary=1"],  # same name twice
        ["--offer", OFFER_A, "--offer", "B salary=1"],  # no NAME:
        ["--offer", OFFER_A, "--offer", "B: salary=lots"],
        ["--offer", OFFER_A, "--offer", "B: salary=1, allowance=5/fortnight"],
        ["--offer", OFFER_A, "--offer", "B: salary=1, expiry=soon"],
        ["--offer", OFFER_A, "--offer", "B: salary=1, cap=maybe"],
        ["--offer", OFFER_A, "--offer", "B: salary=1, colour=blue"],
        ["--offer", OFFER_A, "--offer", OFFER_B, "--utilisation", "150%"],
        ["--offer", OFFER_A, "--offer", OFFER_B, "--utilisation", "most"],
    ],
)
def test_offer_compare_refuses_bad_offers(offline: Cli, args: list[str]) -> None:
    ran = offline("offer", "compare", *args)
    assert ran.code == 2, ran.err
    assert ran.err.startswith("error:")


def test_cost_json(acme: Cli, db: Database) -> None:
    acme.ok("package", "set", "bob@acme.io", "--salary", "120000", "--bonus", "20000",
            "--equity", "36500", "--overhead", "18250", "--allowance", "500",
            "--from", "2025-06-01", "--to", "2025-12-31")  # fmt: skip
    with db.begin() as conn:
        bob_id = OrgRepo(conn).person_id("bob@acme.io")

        def usage(account: str, ref: str, usd: str, at: str, **meta: Any) -> EntryDraft:
            when = datetime.fromisoformat(at)
            amount = -Money.parse(usd).nanousd
            return EntryDraft(account, EntryKind.USAGE, amount, when, ref, meta=meta)

        own, pool = person_account(bob_id), pool_account("platform")
        LedgerRepo(conn).append(
            [
                usage(own, "u1", "12.5", "2026-02-10T10:00:00+00:00"),
                usage(pool, "u2", "2.5", "2026-03-05T10:00:00+00:00", person_id=bob_id),
                usage(pool, "u3", "7", "2026-03-05T10:00:00+00:00", person_id=bob_id * 10),
                usage(own, "u4", "1", "2026-03-31T21:30:00+00:00"),  # 23:30 in Berlin
                usage(own, "u5", "100", "2026-03-31T22:30:00+00:00"),  # April 1st in Berlin
                usage(own, "u6", "50", "2025-12-31T22:59:59+00:00"),  # still 2025 there
            ]
        )
    ran = acme.ok("cost", "--from", "2026-01-01", "--to", "2026-03-31", "--person",
                  "bob@acme.io", "--json").json()  # fmt: skip
    (bob,) = ran["people"]
    # Only the 2026 package counts: $150,000 x 90/365 days = 36,986.30136986301..., rounded
    # once to the nano-dollar; 3 months x $500 committed; spent 12.50 + 2.50 + 1.
    assert bob == {
        "email": "bob@acme.io",
        "salary_usd": "36986.301369863",
        "bonus_usd": "0",
        "equity_usd": "0",
        "overhead_usd": "0",
        "token_allowance_committed_usd": "1500",
        "total_committed_usd": "38486.301369863",
        "token_spend_actual_usd": "16",
        "utilisation": bob["utilisation"],
    }
    assert Decimal(bob["utilisation"]) == Decimal(16) / Decimal(1500)
    assert ran["from"] == "2026-01-01" and ran["to"] == "2026-03-31"
    assert ran["total"] == {k: v for k, v in bob.items() if k != "email"}

    both = acme.ok("cost", "--from", "2025-10-01", "--to", "2025-12-31", "--json").json()
    costs = {p["email"]: p for p in both["people"]}
    # 2025: $120,000 + 20,000 + 36,500 + 18,250 = $194,750 a year, for 92 of 365 days
    # = 49,087.67123287671...; plus 3 x $500.
    assert costs["bob@acme.io"]["total_committed_usd"] == "50587.671232877"
    assert costs["bob@acme.io"]["equity_usd"] == "9200"
    assert costs["bob@acme.io"]["token_spend_actual_usd"] == "50"
    assert costs["ada@acme.io"]["total_committed_usd"] == "0"
    assert both["total"]["total_committed_usd"] == "50587.671232877"
    assert acme("cost", "--from", "2026-03-31", "--to", "2026-01-01").code == 2
    assert acme("cost", "--from", "2026-01-01", "--to", "2026-03-31", "--team", "nope").code == 3


# -- one transaction per command ------------------------------------------------------------
def test_person_import_with_one_bad_line_writes_no_one(
    cli: Cli, db: Database, tmp_path: Path
) -> None:
    cli.ok("init", "--org", "Acme")
    path = tmp_path / "people.csv"
    path.write_text(
        "email,name,team,manager\n"
        "ann@acme.io,Ann,infra,\n"
        "ben@acme.io,Ben,infra,ann@acme.io\n"
        "cat@acme.io,Cat,infra,ann@acme.io,extra\n",
        encoding="utf-8",
    )
    ran = cli("person", "import", str(path), "--create-teams")
    assert ran.code == 2
    assert "line 4: more fields than the header has columns" in ran.err
    assert (count(db, people), count(db, teams), count(db, accounts)) == (0, 0, 0)


def test_a_command_that_fails_half_way_writes_nothing(cli: Cli, db: Database) -> None:
    """``allowances run`` books Ann, then meets Bob's overlapping packages (written behind
    the CLI's back): Ann's entries must go too."""
    cli.ok("init", "--org", "Acme")
    cli.ok("person", "add", "ann@acme.io", "--name", "Ann")
    cli.ok("person", "add", "bob@acme.io", "--name", "Bob")
    for email in ("ann@acme.io", "bob@acme.io"):
        cli.ok("package", "set", email, "--salary", "1", "--allowance", "100",
               "--from", "2026-01-01", "--to", "2026-01-31")  # fmt: skip
    with db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO packages (person_id, effective_from, effective_to,"
                " base_salary_nanousd, bonus_target_nanousd, equity_per_year_nanousd,"
                " benefits_overhead_nanousd, allowance_nanousd, allowance_period, rollover,"
                " expiry_days, cap_mode, overdraft_nanousd, created_utc)"
                " SELECT person_id, effective_from, NULL, base_salary_nanousd,"
                " bonus_target_nanousd, equity_per_year_nanousd, benefits_overhead_nanousd,"
                " allowance_nanousd, allowance_period, rollover, expiry_days, cap_mode,"
                " overdraft_nanousd, created_utc FROM packages"
                " WHERE person_id = (SELECT id FROM people WHERE email = 'bob@acme.io')"
            )
        )
    ran = cli("allowances", "run", "--now", RUN_AT)
    assert ran.code == 4 and "overlap" in ran.err
    assert count(db, ledger_entries) == 0
    with db.begin() as conn:
        assert LedgerRepo(conn).account("person:1").granted_through_utc is None
        conn.execute(text("DELETE FROM packages WHERE effective_to IS NULL"))
    assert "4 entries written" in cli.ok("allowances", "run", "--now", RUN_AT).out


# -- the installed console script -----------------------------------------------------------
def tokenwage_script(*args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "tokenwage"
    env = {k: v for k, v in os.environ.items() if k != "TOKENWAGE_DATABASE_URL"}
    return subprocess.run(
        [str(script), *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_console_script_prints_its_version() -> None:
    done = tokenwage_script("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"tokenwage {__version__}"


def test_console_script_initialises_a_database(tmp_path: Path) -> None:
    path = tmp_path / "scripted.db"
    done = tokenwage_script("--database-url", f"sqlite:///{path}", "init", "--org", "Scripted")
    assert done.returncode == 0, done.stderr
    assert "Initialised 'Scripted' (UTC)" in done.stdout
    db = Database(f"sqlite:///{path}")
    try:
        with db.begin() as conn:
            assert OrgRepo(conn).get_org() == Org("Scripted", "UTC")
    finally:
        db.dispose()


def test_console_script_reports_an_unreachable_database_as_exit_7() -> None:
    done = tokenwage_script(
        "--database-url", "postgresql://postgres@127.0.0.1:1/none", "team", "list"
    )
    assert done.returncode == 7, done.stderr
    assert done.stderr.startswith("error: database error")
    assert "Traceback" not in done.stderr
