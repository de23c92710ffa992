"""``tokenwage import``, ``identity`` and ``report`` through the real entry point."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.cli_runner import Cli
from tests.importers.logs import (
    claude_line,
    codex_count,
    codex_meta,
    codex_turn,
    codex_usage,
    write,
)
from tests.importers.test_csv_usage import GOOD, HEADER
from tokenwage.storage.db import Database
from tokenwage.storage.schema import import_cursors, ledger_entries, usage_records


@pytest.fixture
def cli(db_url: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    c = Cli(db_url, capsys)
    c.ok("init", "--org", "Acme", "--timezone", "UTC")
    c.ok("team", "add", "platform")
    c.ok("person", "add", "ada@acme.io", "--name", "Ada", "--team", "platform")
    c.ok("package", "set", "ada@acme.io", "--salary", "150000", "--allowance", "500",
         "--from", "2026-01-01")  # fmt: skip
    return c


def count(db_url: str, table: Any) -> int:
    db = Database(db_url)
    try:
        with db.begin() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())
    finally:
        db.dispose()


def transcripts(root: Path) -> Path:
    write(
        root / "projects" / "p" / "s1.jsonl",
        [
            claude_line("m1", "r1", "2026-03-01T10:00:00Z", output=100),
            claude_line("m1", "r1", "2026-03-01T10:00:00Z", output=100),
            "{torn",
            claude_line("m2", "r2", "2026-03-02T10:00:00Z", output=50, cache_1h=10),
        ],
    )
    return root


def test_import_twice_then_report(cli: Cli, db_url: str, tmp_path: Path) -> None:
    root = transcripts(tmp_path / "claude")
    first = cli.ok("import", "claude-code", str(root), "--json").json()
    assert first["records"] == {
        "read": 2, "new": 2, "duplicates": 0, "via_gateway": 0, "unattributed": 2
    }  # fmt: skip
    assert first["bad_lines"] == 1 and first["problems"][0]["line"] == 3
    assert first["problems"][0]["file"].endswith("s1.jsonl")
    assert Decimal(first["tracked_usd"]) > 0 and first["charged_usd"] == "0"
    second = cli.ok("import", "claude-code", str(root), "--json").json()
    assert second["records"]["read"] == 0 and second["lines_read"] == 0
    assert count(db_url, usage_records) == 2 and count(db_url, import_cursors) == 1

    daily = cli.ok("report", "daily", "--json", "--since", "20260301").json()
    assert [(r["date"], r["output_tokens"]) for r in daily["rows"]] == [
        ("2026-03-01", 100),
        ("2026-03-02", 50),
    ]
    assert daily["totals"]["cache_write_tokens"] == 10
    assert daily["totals"]["cache_write_1h_tokens"] == 10
    assert daily["totals"]["cost_usd"] == first["tracked_usd"]
    table = cli.ok("report", "daily").out
    assert "2026-03-02" in table and "Total" in table and "claude-sonnet-4-5" in table
    for kind in ("monthly", "session", "models"):
        assert "Total" in cli.ok("report", kind, "--timezone", "Europe/Berlin").out


def test_the_human_summary_names_bad_lines_and_unmapped_identities(
    cli: Cli, tmp_path: Path
) -> None:
    ran = cli.ok("import", "claude-code", str(transcripts(tmp_path / "c")), "--hostname", "box1")
    assert "booked 2 records" in ran.out and "Tracked $" in ran.out
    assert "s1.jsonl:3: not valid JSON" in ran.err
    assert "hostname:box1: 2 records" in ran.err


def test_dry_run_writes_nothing(cli: Cli, db_url: str, tmp_path: Path) -> None:
    ran = cli.ok("import", "claude-code", str(transcripts(tmp_path / "c")), "--dry-run")
    assert "would book 2 records" in ran.out and "nothing was written" in ran.out
    assert count(db_url, usage_records) == 0 and count(db_url, import_cursors) == 0


def test_charge_mode_debits_the_person(cli: Cli, db_url: str, tmp_path: Path) -> None:
    root = transcripts(tmp_path / "c")
    before = count(db_url, ledger_entries)
    ran = cli.ok("import", "claude-code", str(root), "--person", "ada@acme.io",
                 "--mode", "charge", "--json")  # fmt: skip
    summary = ran.json()
    assert summary["records"]["unattributed"] == 0 and Decimal(summary["charged_usd"]) > 0
    assert summary["ledger_entries"] >= 2  # one debit per day and model at least
    assert count(db_url, ledger_entries) == before + summary["ledger_entries"]


def test_unknown_person_or_missing_paths_are_refused(cli: Cli, tmp_path: Path) -> None:
    root = transcripts(tmp_path / "c")
    ran = cli("import", "claude-code", str(root), "--person", "eve@acme.io")
    assert ran.code == 3 and "eve@acme.io" in ran.err
    ran = cli("import", "claude-code", str(tmp_path / "nowhere"))
    assert ran.code == 2 and "nowhere" in ran.err
    ran = cli("import", "codex")  # HOME is the test's: no ~/.codex
    assert ran.code == 2 and "Codex" in ran.err
    ran = cli("import", "csv", str(tmp_path / "missing.csv"))
    assert ran.code == 2 and "missing.csv" in ran.err


def test_default_folders_come_from_the_environment(
    cli: Cli, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(transcripts(tmp_path / "cfg")))
    assert cli.ok("import", "claude-code", "--json").json()["records"]["new"] == 2
    codex_home = tmp_path / "codex-home"
    sid = "0199aaaa-bbbb-7ccc-8ddd-eeeeeeeeeeee"
    write(
        codex_home / "sessions" / f"rollout-2026-03-01T10-00-00-{sid}.jsonl",
        [
            codex_meta(sid, "2026-03-01T10:00:00Z"),
            codex_turn("2026-03-01T10:00:01Z"),
            codex_count("2026-03-01T10:00:02Z", codex_usage(100, 20, 10), codex_usage(100, 20, 10)),
        ],
    )
    monkeypatch.setenv("CODEX_HOME", str(codex_home))
    assert cli.ok("import", "codex", "--json").json()["records"]["new"] == 1
    assert count(db_url, usage_records) == 3


def test_csv_bad_rows_exit_2_with_every_line_unless_skip_bad(
    cli: Cli, db_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "u.csv"
    path.write_text("\n".join([HEADER, GOOD[0], "soon,,openai,gpt-5,1,1,,,,,,", GOOD[1]]) + "\n")
    ran = cli("import", "csv", str(path))
    assert ran.code == 2 and f"{path.resolve()}:line 3" in ran.err
    assert count(db_url, usage_records) == 0
    ran = cli.ok("import", "csv", str(path), "--skip-bad")
    assert "booked 2 records" in ran.out and "u.csv:3" in ran.err


def test_identities_map_hostnames_to_people(cli: Cli, tmp_path: Path) -> None:
    cli.ok("identity", "add", "hostname", "Box1", "ada@acme.io")
    assert cli("identity", "add", "hostname", "box1", "ada@acme.io").code == 4
    assert cli("identity", "add", "hostname", "box2", "eve@acme.io").code == 3
    assert cli("identity", "add", "planet", "box2", "ada@acme.io").code == 2
    listed = cli.ok("identity", "list", "--json").json()
    assert listed == [{"kind": "hostname", "value": "box1", "email": "ada@acme.io"}]
    ran = cli.ok("import", "claude-code", str(transcripts(tmp_path / "c")), "--hostname", "BOX1",
                 "--json")  # fmt: skip
    assert ran.json()["records"]["unattributed"] == 0
    ada = cli.ok("report", "models", "--person", "ada@acme.io", "--json").json()
    assert ada["totals"]["requests"] == 2
