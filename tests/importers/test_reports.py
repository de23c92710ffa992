"""Usage reports: local days and months, filters, sessions and models, exact money."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tests.importers.conftest import NOW, book
from tests.importers.logs import claude_line, write
from tests.importers.test_csv_usage import HEADER
from tokenwage.core.errors import InvalidInput, NotFound
from tokenwage.core.money import Money
from tokenwage.importers.claude_code import ClaudeCodeLogs
from tokenwage.importers.csv_usage import CsvUsage
from tokenwage.services.reports import ReportFilter, UsageReport, usage_report
from tokenwage.storage.db import Database

ROWS = [
    "2026-03-01T23:30:00Z,ada@acme.io,openai,gpt-5,100,10,1,0,0,r1,s1,web",
    "2026-03-02T00:30:00Z,ada@acme.io,openai,gpt-5-mini,200,20,2,0,0,r2,s1,web",
    "2026-03-31T23:30:00Z,bob@acme.io,openai,gpt-5,300,30,3,0,0,r3,s2,api",
    "2026-04-01T12:00:00Z,,openai,gpt-5,400,40,4,0,0,r4,,",
]


@pytest.fixture
def usage(books: Database, tmp_path: Path) -> Database:
    path = tmp_path / "usage.csv"
    path.write_text("\n".join([HEADER, *ROWS]) + "\n")
    book(books, CsvUsage(path))
    return books


def run(db: Database, kind: str, **kw: object) -> UsageReport:
    with db.begin() as conn:
        return usage_report(conn, kind, ReportFilter(**kw))  # type: ignore[arg-type]


def labels(report: UsageReport) -> list[tuple[str, int]]:
    return [(row.label, row.totals.input_tokens) for row in report.rows]


def test_days_follow_the_time_zone(usage: Database) -> None:
    assert labels(run(usage, "daily")) == [
        ("2026-03-01", 100),
        ("2026-03-02", 200),
        ("2026-03-31", 300),
        ("2026-04-01", 400),
    ]
    assert labels(run(usage, "daily", timezone="Europe/Berlin")) == [
        ("2026-03-02", 300),
        ("2026-04-01", 700),
    ]
    assert labels(run(usage, "daily", timezone="Asia/Kolkata"))[0] == ("2026-03-02", 300)
    assert labels(run(usage, "monthly", timezone="Europe/Berlin")) == [
        ("2026-03", 300),
        ("2026-04", 700),
    ]


def test_totals_tokens_and_exact_cost(usage: Database) -> None:
    report = run(usage, "monthly")
    assert labels(report) == [("2026-03", 600), ("2026-04", 400)]
    total = report.total
    assert (total.input_tokens, total.output_tokens, total.cache_read_tokens) == (1000, 100, 10)
    assert total.total_tokens == 1110 and total.requests == 4
    assert total.cost == Money(sum(r.totals.cost_nanousd for r in report.rows))
    js = report.as_json()
    assert js["totals"]["cost_usd"] == total.cost.exact()
    assert js["rows"][0]["month"] == "2026-03"
    assert js["rows"][0]["models"] == ["openai/gpt-5", "openai/gpt-5-mini"]
    assert [b["model"] for b in js["rows"][0]["breakdown"]] == js["rows"][0]["models"]
    assert isinstance(js["rows"][0]["cost_usd"], str)


def test_filters(usage: Database) -> None:
    assert labels(run(usage, "daily", person_email="ada@acme.io")) == [
        ("2026-03-01", 100),
        ("2026-03-02", 200),
    ]
    assert labels(run(usage, "daily", team="platform")) == labels(
        run(usage, "daily", person_email="ada@acme.io")
    )
    assert labels(run(usage, "daily", since=date(2026, 3, 2), until=date(2026, 3, 31))) == [
        ("2026-03-02", 200),
        ("2026-03-31", 300),
    ]
    berlin = run(usage, "daily", since=date(2026, 4, 1), timezone="Europe/Berlin")
    assert labels(berlin) == [("2026-04-01", 700)]
    assert run(usage, "daily", source="claude_code").rows == []
    assert run(usage, "daily", source="csv").total.requests == 4
    with pytest.raises(NotFound):
        run(usage, "daily", person_email="nobody@acme.io")
    with pytest.raises(InvalidInput):
        run(usage, "daily", since=date(2026, 4, 2), until=date(2026, 4, 1))
    with pytest.raises(InvalidInput):
        run(usage, "daily", timezone="Mars/Base")


def test_sessions_and_models(usage: Database, tmp_path: Path) -> None:
    write(tmp_path / "cc" / "projects" / "p" / "s9.jsonl",
          [claude_line("msg_9", "req_9", "2026-03-05T10:00:00Z", session="s9")])  # fmt: skip
    book(usage, ClaudeCodeLogs([tmp_path / "cc"], now=NOW))
    sessions = run(usage, "session")
    assert {(r.label, r.detail["source"], r.totals.requests) for r in sessions.rows} == {
        ("s9", "claude_code", 1),
        ("s2", "csv", 1),
        ("(no session)", "csv", 1),
        ("s1", "csv", 2),
    }
    by_label = {r.label: r for r in sessions.rows}
    assert by_label["s1"].detail["project"] == "web"
    assert by_label["s1"].detail["last_activity"].startswith("2026-03-02T00:30")
    assert by_label["s9"].models == ["anthropic/claude-sonnet-4-5-20250929"]
    order = [r.label for r in sessions.rows]
    assert order == ["s1", "s9", "s2", "(no session)"]  # by last activity

    models = run(usage, "models")
    assert {r.label for r in models.rows} == {
        "openai/gpt-5",
        "openai/gpt-5-mini",
        "anthropic/claude-sonnet-4-5-20250929",
    }
    costs = [r.totals.cost_nanousd for r in models.rows]
    assert costs == sorted(costs, reverse=True)


def test_an_empty_database_reports_nothing(books: Database) -> None:
    report = run(books, "daily")
    assert report.rows == [] and report.total.requests == 0
    assert report.as_json()["totals"]["cost_usd"] == "0"
