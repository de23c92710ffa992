"""``tokenwage import openai-usage|...|cursor`` through the real entry point."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_runner import Cli
from tokenwage.storage.db import Database

from .conftest import dumps, ledger_count, stored
from .test_openai_admin import COSTS, USAGE


@pytest.fixture
def cli(org: Database, db_url: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(db_url, capsys)


def test_a_usage_export_file_is_charged_once(cli: Cli, org: Database, tmp_path: Path) -> None:
    path = tmp_path / "usage.json"
    path.write_bytes(dumps(USAGE))
    first = cli.ok("import", "openai-usage", str(path))
    assert "Booked 5 (0 already booked" in first.out  # the open bucket too: it ended long ago
    assert "Charged $" in first.out
    assert "api_key:key_eve: 1 records" in first.err
    entries = ledger_count(org)
    again = cli.ok("import", "openai-usage", str(path), "--json").json()
    assert (again["new"], again["duplicates"], again["charged_usd"]) == (0, 5, "0")
    assert ledger_count(org) == entries


def test_track_mode_and_dry_run(cli: Cli, org: Database, tmp_path: Path) -> None:
    path = tmp_path / "usage.json"
    path.write_bytes(dumps(USAGE))
    dry = cli.ok("import", "openai-usage", str(path), "--dry-run")
    assert "Would book 5" in dry.out and "nothing was written" in dry.out
    assert stored(org) == []
    tracked = cli.ok("import", "openai-usage", str(path), "--mode", "track", "--json").json()
    assert tracked["new"] == 5 and tracked["charged_usd"] == "0" and tracked["tracked_usd"] != "0"
    assert ledger_count(org) == 0


def test_fetch_pages_through_the_admin_api(cli: Cli, org: Database, mock_url: str) -> None:
    args = ["--fetch", "--base-url", mock_url, "--since", "2026-01-01", "--until", "2026-01-03"]
    ran = cli.ok("import", "cursor", *args, "--admin-key", "crsr_test", "--json").json()
    assert ran["new"] == ran["records"] > 0 and ran["from"].endswith(f"from {mock_url}")
    assert ran["unknown_identities"] == {"email:eve@contractor.test": ran["unattributed"]}
    report = cli.ok("import", "claude-code-report", *args, "--admin-key", "k", "--json").json()
    assert report["new"] > 0 and report["reported_usd"] != "0"
    assert {r.source for r in stored(org)} == {"cursor", "claude_code_report"}


def test_mistakes_exit_2_with_a_clear_message(cli: Cli, tmp_path: Path, mock_url: str) -> None:
    ran = cli("import", "openai-usage")
    assert ran.code == 2 and "give export files or --fetch" in ran.err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    ran = cli("import", "anthropic-usage", str(bad))
    assert ran.code == 2 and f"{bad}:line 1: not JSON" in ran.err
    ran = cli("import", "openai-usage", str(tmp_path / "missing.json"))
    assert ran.code == 2 and "cannot read" in ran.err
    ran = cli("import", "openai-usage", "--fetch", "--base-url", mock_url)
    assert ran.code == 2 and "--admin-key" in ran.err


def test_cost_reports_default_to_track(cli: Cli, org: Database, tmp_path: Path) -> None:
    path = tmp_path / "costs.json"
    path.write_bytes(dumps(COSTS))
    dry = cli.ok("import", "openai-costs", str(path), "--dry-run", "--json").json()
    assert (dry["records"], dry["reported_usd"]) == (2, "1.294567")
    ran = cli("import", "openai-costs", str(path))
    assert ran.code == 0 and ledger_count(org) == 0  # tracked: recorded, never debited
