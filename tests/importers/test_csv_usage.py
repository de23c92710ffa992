"""The generic usage CSV: columns, conventions, bad rows (nothing written unless skip_bad),
attribution and incremental reads."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.importers.conftest import book, cursors, record_count, records, token_sums
from tokenwage.core.errors import BadFile
from tokenwage.importers.csv_usage import CsvUsage
from tokenwage.storage.db import Database
from tokenwage.storage.org_repo import OrgRepo

HEADER = (
    "timestamp,email,provider,model,input_tokens,output_tokens,cache_read_tokens,"
    "cache_write_tokens,reasoning_tokens,request_id,session_id,project"
)
GOOD = [
    "2026-03-01T10:00:00Z,ada@acme.io,openai,gpt-5,1000,500,200,0,100,req-1,s1,web",
    "2026-03-01,Bob@Acme.io,Anthropic,claude-sonnet-4-5-20250929,10,20,30,40,,req-2,,",
    "2026-03-02T09:00:00+02:00,,openai,gpt-5,5,5,,,,,,",
]


def csv_file(tmp_path: Path, rows: list[str], header: str = HEADER) -> Path:
    path = tmp_path / "usage.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_rows_are_booked_in_our_convention_and_attributed_by_email(
    books: Database, tmp_path: Path
) -> None:
    outcome = book(books, CsvUsage(csv_file(tmp_path, GOOD)))
    assert outcome.summary.new == 3 and outcome.summary.unattributed == 1
    rows = records(books)
    assert token_sums(rows) == {
        "input_tokens": 1015,
        "output_tokens": 525,
        "cache_write_tokens": 40,
        "cache_write_1h_tokens": 0,
        "cache_read_tokens": 230,
        "reasoning_tokens": 100,
    }
    with books.begin() as conn:
        ada, bob = (OrgRepo(conn).person_id(e) for e in ("ada@acme.io", "bob@acme.io"))
    by_request = {r.upstream_request_id: r for r in rows}
    assert by_request["req-1"].person_id == ada and by_request["req-1"].project == "web"
    assert by_request["req-2"].person_id == bob and by_request["req-2"].provider == "anthropic"
    assert by_request["req-2"].used_utc == datetime(2026, 3, 1, tzinfo=UTC)
    anonymous = by_request[None]
    assert anonymous.person_id is None
    assert anonymous.used_utc == datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
    assert anonymous.request_id.startswith("csv:row:")


def test_a_bad_row_refuses_the_whole_file_with_every_line_number(
    books: Database, tmp_path: Path
) -> None:
    rows = [
        GOOD[0],
        "yesterday,ada@acme.io,openai,gpt-5,1,1,,,,,,",
        "2026-03-01T10:00:00Z,ada@acme.io,openai,gpt-5,1.5,1,,,,,,",
        "",
        "2026-03-01T10:00:00Z,ada@acme.io,openai,gpt-5,1,1,,,5,,,",
        "2026-03-01T10:00:00Z,ada@acme.io,,gpt-5,1,1,,,,,,",
        "2026-03-01T10:00:00Z,ada@acme.io,openai,gpt-5,1,1",
        GOOD[1],
    ]
    with pytest.raises(BadFile) as caught:
        book(books, CsvUsage(csv_file(tmp_path, rows)))
    assert [p.line for p in caught.value.problems] == [3, 4, 6, 7, 8]
    text = str(caught.value)
    assert "yesterday" in text and "'1.5'" in text and "reasoning_tokens" in text
    assert "provider is empty" in text and "header has 12 columns" in text
    assert record_count(books) == 0 and cursors(books, "csv") == {}


def test_skip_bad_imports_the_good_rows_and_reports_the_bad(
    books: Database, tmp_path: Path
) -> None:
    rows = [GOOD[0], "2026-03-01T10:00:00Z,ada@acme.io,openai,gpt-5,-1,1,,,,,,", GOOD[1]]
    outcome = book(books, CsvUsage(csv_file(tmp_path, rows), skip_bad=True))
    assert outcome.summary.new == 2
    assert [(Path(f).name, p.line) for f, p in outcome.report.problems] == [("usage.csv", 3)]


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        ("timestamp,provider,model,input", "unknown column(s) 'input'"),
        ("timestamp,model,input_tokens", "missing column(s) provider"),
        ("timestamp,provider,model,email", "no token column"),
        ("timestamp,provider,model,input_tokens,input_tokens", "a column appears twice"),
    ],
)
def test_a_wrong_header_is_line_1(
    books: Database, tmp_path: Path, header: str, fragment: str
) -> None:
    with pytest.raises(BadFile) as caught:
        book(books, CsvUsage(csv_file(tmp_path, [], header=header)))
    assert [p.line for p in caught.value.problems] == [1]
    assert fragment in str(caught.value)


def test_appended_rows_are_read_alone_and_a_rerun_adds_nothing(
    books: Database, tmp_path: Path
) -> None:
    path = csv_file(tmp_path, GOOD[:2])
    book(books, CsvUsage(path))
    assert book(books, CsvUsage(path)).report.files_read == 0
    with path.open("a") as f:
        f.write(GOOD[2] + "\n" + "2026-03-03T00:00:00Z,,openai,gpt-5,x,1,,,,,,\n")
    with pytest.raises(BadFile) as caught:
        book(books, CsvUsage(path))
    assert [p.line for p in caught.value.problems] == [5]
    outcome = book(books, CsvUsage(path, skip_bad=True))
    assert outcome.summary.new == 1 and outcome.report.lines_read == 2
    assert record_count(books) == 3
    assert cursors(books, "csv")[str(path.resolve())].position == path.stat().st_size


def test_person_overrides_the_email_column(books: Database, tmp_path: Path) -> None:
    book(books, CsvUsage(csv_file(tmp_path, GOOD), person_email="bob@acme.io"))
    with books.begin() as conn:
        bob = OrgRepo(conn).person_id("bob@acme.io")
    assert {r.person_id for r in records(books)} == {bob}


def test_a_bom_and_crlf_are_fine(books: Database, tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(("\ufeff" + HEADER + "\r\n" + GOOD[0] + "\r\n").encode())
    assert book(books, CsvUsage(path)).summary.new == 1
