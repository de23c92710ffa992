"""Codex rollouts: per-call deltas, repeated counts, model changes, cached input and
reasoning conventions, incremental runs."""

from __future__ import annotations

from pathlib import Path

from tests.importers.conftest import book, cursors, record_count, records, token_sums
from tests.importers.logs import (
    codex_count,
    codex_message,
    codex_meta,
    codex_turn,
    codex_usage,
    write,
)
from tokenwage.importers.codex import CodexLogs, default_roots
from tokenwage.storage.db import Database

SESSION = "0199aaaa-bbbb-7ccc-8ddd-eeeeeeeeeeee"


def rollout(root: Path, name: str = f"rollout-2026-03-01T10-00-00-{SESSION}.jsonl") -> Path:
    """Three calls: 1000/200 cached/300 out (50 reasoning), a repeat of that count, then
    500/400 cached/100 out on gpt-5 after a model switch, then a rate-limit-only event."""
    t1 = codex_usage(1000, 200, 300, 50)
    t2 = codex_usage(500, 400, 100, 0)
    cum1 = t1
    cum2 = codex_usage(1500, 600, 400, 50)
    return write(
        root / "sessions" / "2026" / "03" / "01" / name,
        [
            codex_meta(SESSION, "2026-03-01T10:00:00.000Z"),
            codex_turn("2026-03-01T10:00:01.000Z", "gpt-5-codex"),
            codex_message("2026-03-01T10:00:02.000Z"),
            codex_count("2026-03-01T10:00:03.000Z", t1, cum1),
            codex_count("2026-03-01T10:00:04.000Z", t1, cum1),  # rate limits: same counts
            codex_turn("2026-03-01T10:05:00.000Z", "gpt-5"),
            codex_count("2026-03-01T10:05:03.000Z", t2, cum2),
            codex_count("2026-03-01T10:05:04.000Z", None, None),  # info: null
        ],
    )


def logs(*paths: Path) -> CodexLogs:
    return CodexLogs(list(paths), hostname="ada-laptop")


def test_calls_are_booked_from_last_token_usage_in_our_convention(
    books: Database, tmp_path: Path
) -> None:
    rollout(tmp_path / "codex")
    outcome = book(books, logs(tmp_path / "codex"))
    rows = records(books)
    assert [(r.request_id, r.model) for r in rows] == [
        (f"codex:{SESSION}:1300", "gpt-5-codex"),
        (f"codex:{SESSION}:1900", "gpt-5"),
    ]
    # input excludes cached input; output includes reasoning, which is never added on top
    assert token_sums(rows) == {
        "input_tokens": 800 + 100,
        "output_tokens": 300 + 100,
        "cache_write_tokens": 0,
        "cache_write_1h_tokens": 0,
        "cache_read_tokens": 200 + 400,
        "reasoning_tokens": 50,
    }
    assert outcome.report.skipped == {"token counts that did not advance": 1}
    assert {(r.provider, r.session_id, r.project) for r in rows} == {
        ("openai", SESSION, "/home/ada/proj")
    }


def test_totals_alone_are_turned_into_deltas(books: Database, tmp_path: Path) -> None:
    write(
        tmp_path / f"rollout-2026-03-01T10-00-00-{SESSION}.jsonl",
        [
            codex_meta(SESSION, "2026-03-01T10:00:00Z"),
            codex_count("2026-03-01T10:00:03Z", None, codex_usage(100, 0, 10)),
            codex_count("2026-03-01T10:01:03Z", None, codex_usage(300, 50, 30)),
        ],
    )
    outcome = book(books, logs(tmp_path))
    rows = records(books)
    assert [(r.input_tokens, r.cache_read_tokens, r.output_tokens) for r in rows] == [
        (100, 0, 10),
        (150, 50, 20),
    ]
    assert [r.model for r in rows] == ["gpt-5", "gpt-5"]  # no model anywhere: ccusage's guess
    assert outcome.report.skipped == {"sessions without a model, booked as gpt-5": 1}


def test_a_second_run_reads_nothing_and_appends_keep_the_model_and_totals(
    books: Database, tmp_path: Path
) -> None:
    path = rollout(tmp_path / "codex")
    book(books, logs(tmp_path / "codex"))
    saved = cursors(books, "codex")
    assert saved[str(path.resolve())].position == path.stat().st_size
    again = book(books, logs(tmp_path / "codex"))
    assert (again.report.files_read, again.summary.read) == (0, 0)

    cum2 = codex_usage(1500, 600, 400, 50)
    write(
        path,
        [
            codex_count("2026-03-01T10:06:00Z", codex_usage(500, 400, 100), cum2),  # a repeat
            codex_count(
                "2026-03-01T10:07:00Z", codex_usage(10, 0, 5), codex_usage(1510, 600, 405, 50)
            ),
            "{broken",
        ],
        mode="a",
    )
    third = book(books, logs(tmp_path / "codex"))
    assert third.summary.new == 1
    assert third.report.skipped == {"token counts that did not advance": 1}
    assert [(p.line, "not valid JSON" in p.message) for _, p in third.report.problems] == [
        (11, True)
    ]
    newest = records(books)[-1]
    assert (newest.model, newest.input_tokens, newest.output_tokens) == ("gpt-5", 10, 5)
    assert newest.session_id == SESSION


def test_an_archived_copy_is_not_booked_twice(books: Database, tmp_path: Path) -> None:
    original = rollout(tmp_path / "codex")
    archived = tmp_path / "codex" / "archived_sessions" / original.name
    archived.parent.mkdir(parents=True)
    archived.write_bytes(original.read_bytes())
    outcome = book(books, logs(tmp_path / "codex"))
    assert (outcome.summary.new, outcome.summary.duplicates) == (2, 2)
    assert record_count(books) == 2


def test_bad_counts_are_line_problems(books: Database, tmp_path: Path) -> None:
    write(
        tmp_path / f"rollout-x-{SESSION}.jsonl",
        [
            codex_meta(SESSION, "2026-03-01T10:00:00Z"),
            codex_count("2026-03-01T10:00:03Z", {"input_tokens": "many"}, None),  # type: ignore[dict-item]
            codex_count("2026-03-01T10:00:04Z", codex_usage(5, 0, 5), None),
        ],
    )
    outcome = book(books, logs(tmp_path))
    assert [p.line for _, p in outcome.report.problems] == [2]
    assert "input_tokens" in outcome.report.problems[0][1].message
    assert record_count(books) == 1


def test_default_roots_follow_codex_home(tmp_path: Path) -> None:
    (tmp_path / "ch" / "sessions").mkdir(parents=True)
    (tmp_path / "ch" / "archived_sessions").mkdir()
    assert default_roots({"CODEX_HOME": str(tmp_path / "ch")}, tmp_path) == [
        tmp_path / "ch" / "sessions",
        tmp_path / "ch" / "archived_sessions",
    ]
    (tmp_path / ".codex" / "sessions").mkdir(parents=True)
    assert default_roots({}, tmp_path) == [tmp_path / ".codex" / "sessions"]
