"""Claude Code transcripts: known totals, repeats, replays, sidechains, bad lines,
incremental runs and attribution, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from tests.importers.conftest import NOW, book, cursors, record_count, records, token_sums
from tests.importers.logs import HAIKU, SONNET, claude_line, user_line, write
from tokenwage.core.imported import Identity, IdentityKind
from tokenwage.importers.claude_code import (
    ClaudeCodeLogs,
    account_identities,
    default_roots,
)
from tokenwage.storage.db import Database
from tokenwage.storage.imports_repo import ImportsRepo
from tokenwage.storage.org_repo import OrgRepo
from tokenwage.storage.schema import usage_records


def logs(*paths: Path, **kw: object) -> ClaudeCodeLogs:
    return ClaudeCodeLogs(list(paths), now=NOW, hostname="ada-laptop", **kw)  # type: ignore[arg-type]


def tree(root: Path) -> Path:
    """Two projects. Known totals of the distinct replies:
    msg_a (3 lines, one reply), msg_b, msg_c (haiku, next day), msg_d (sidechain, also
    replayed in its subagent transcript), msg_a again in a resumed session's file."""
    proj = root / "projects"
    a = claude_line("msg_a", "req_a", "2026-03-01T10:00:01.000Z", input=5, output=200,
                    cache_5m=1000, cache_1h=500, cache_read=20_000)  # fmt: skip
    d = claude_line("msg_d", "req_d", "2026-03-01T11:00:00.000Z", input=7, output=70,
                    cache_read=700, sidechain=True)  # fmt: skip
    write(
        proj / "-home-ada-proj" / "s1.jsonl",
        [
            user_line("2026-03-01T10:00:00.000Z"),
            a,
            a,
            a,
            user_line("2026-03-01T10:00:05.000Z", tool_usage=True),
            claude_line("msg_b", "req_b", "2026-03-01T10:05:00.000Z", input=3, output=30),
            '{"type":"assistant","message":{"usage":',  # cut off by a crash: corrupt
            d,
        ],
    )
    write(proj / "-home-ada-proj" / "s1" / "subagents" / "agent-1.jsonl", [d])
    write(
        proj / "-home-ada-other" / "s2.jsonl",
        [
            a,  # a resumed session replays the earlier reply
            claude_line(
                "msg_c",
                "req_c",
                "2026-03-02T09:00:00.000Z",
                model=HAIKU,
                session="s2",
                input=1,
                output=11,
                cache_read=111,
            ),  # fmt: skip
            claude_line("msg_s", None, "2026-03-02T09:00:01.000Z", model="<synthetic>", output=0),
            "not json at all",
        ],
    )
    return root


EXPECTED = {
    "input_tokens": 5 + 3 + 7 + 1,
    "output_tokens": 200 + 30 + 70 + 11,
    "cache_write_tokens": 1000,
    "cache_write_1h_tokens": 500,
    "cache_read_tokens": 20_000 + 700 + 111,
    "reasoning_tokens": 0,
}


def test_a_tree_books_each_reply_once_with_known_totals(books: Database, tmp_path: Path) -> None:
    root = tree(tmp_path / "claude")
    outcome = book(books, logs(root))
    rows = records(books)
    assert [r.request_id for r in rows] == [
        "claude_code:msg_a:req_a",
        "claude_code:msg_b:req_b",
        "claude_code:msg_c:req_c",
        "claude_code:msg_d:req_d",
    ]
    assert token_sums(rows) == EXPECTED
    assert outcome.summary.new == 4
    assert outcome.summary.duplicates == 2  # msg_a in s2.jsonl, msg_d in the subagent file
    assert outcome.report.skipped["repeated lines of one reply"] == 2
    assert outcome.report.skipped["<synthetic> replies"] == 1
    by_id = {r.request_id: r for r in rows}
    a = by_id["claude_code:msg_a:req_a"]
    assert (a.message_id, a.upstream_request_id) == ("msg_a", "req_a")
    assert (a.session_id, a.project, a.hostname) == ("s1", "/home/ada/proj", "ada-laptop")
    assert a.used_utc == datetime(2026, 3, 1, 10, 0, 1, tzinfo=UTC)
    assert (a.provider, a.model, a.charge_mode) == ("anthropic", SONNET, "track")
    assert a.cost_nanousd > 0
    assert by_id["claude_code:msg_c:req_c"].model == HAIKU


def test_corrupt_lines_are_reported_with_file_and_line_and_the_rest_imports(
    books: Database, tmp_path: Path
) -> None:
    root = tree(tmp_path / "claude")
    outcome = book(books, logs(root))
    problems = sorted((Path(f).name, p.line) for f, p in outcome.report.problems)
    assert problems == [("s1.jsonl", 7), ("s2.jsonl", 4)]
    assert outcome.report.bad_lines == 2
    assert all("not valid JSON" in p.message for _, p in outcome.report.problems)
    assert record_count(books) == 4


def test_a_second_run_reads_nothing_new(books: Database, tmp_path: Path) -> None:
    root = tree(tmp_path / "claude")
    book(books, logs(root))
    saved = cursors(books, "claude_code")
    files = list(root.rglob("*.jsonl"))
    assert sorted(saved) == sorted(str(f.resolve()) for f in files)
    for f in files:
        assert saved[str(f.resolve())].position == f.stat().st_size
    again = book(books, logs(root))
    assert (again.report.files_read, again.report.bytes_read, again.summary.read) == (0, 0, 0)
    assert record_count(books) == 4
    assert cursors(books, "claude_code") == saved


def test_re_importing_without_cursors_adds_nothing(books: Database, tmp_path: Path) -> None:
    root = tree(tmp_path / "claude")
    book(books, logs(root))
    copy = tmp_path / "copy"
    for f in root.rglob("*.jsonl"):  # the same transcripts at another path: no cursors
        target = copy / f.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(f.read_bytes())
    again = book(books, logs(copy))
    assert again.summary.new == 0 and again.summary.duplicates == 6  # 4 + 2 replays
    assert record_count(books) == 4


def test_appended_lines_are_picked_up_with_true_line_numbers(
    books: Database, tmp_path: Path
) -> None:
    root = tree(tmp_path / "claude")
    book(books, logs(root))
    s1 = root / "projects" / "-home-ada-proj" / "s1.jsonl"
    before = s1.stat().st_size
    write(s1, ["{oops", claude_line("msg_e", "req_e", "2026-03-03T08:00:00.000Z")], mode="a")
    outcome = book(books, logs(root))
    assert outcome.report.files_read == 1
    assert outcome.report.bytes_read == s1.stat().st_size - before
    assert outcome.summary.new == 1 and record_count(books) == 5
    assert [(Path(f).name, p.line) for f, p in outcome.report.problems] == [("s1.jsonl", 9)]
    assert cursors(books, "claude_code")[str(s1.resolve())].position == s1.stat().st_size


def test_a_line_still_being_written_waits_for_its_newline(books: Database, tmp_path: Path) -> None:
    s1 = write(
        tmp_path / "projects" / "p" / "s1.jsonl", [claude_line("m1", "r1", "2026-03-01T10:00:00Z")]
    )
    first_size = s1.stat().st_size
    half = claude_line("m2", "r2", "2026-03-01T10:01:00Z")
    with s1.open("a") as f:
        f.write(half[:40])
    book(books, logs(tmp_path))
    assert record_count(books) == 1
    assert cursors(books, "claude_code")[str(s1.resolve())].position == first_size
    with s1.open("a") as f:
        f.write(half[40:] + "\n")
    outcome = book(books, logs(tmp_path))
    assert outcome.summary.new == 1 and outcome.report.bad_lines == 0
    assert record_count(books) == 2


def test_a_replaced_or_truncated_file_is_read_again_from_the_start(
    books: Database, tmp_path: Path
) -> None:
    s1 = tmp_path / "projects" / "p" / "s1.jsonl"
    write(s1, [claude_line(f"m{i}", f"r{i}", "2026-03-01T10:00:00Z") for i in range(3)])
    book(books, logs(tmp_path))
    # truncated: shorter than the cursor
    write(s1, [claude_line("m0", "r0", "2026-03-01T10:00:00Z")])
    truncated = book(books, logs(tmp_path))
    assert truncated.report.files_restarted == 1 and truncated.summary.duplicates == 1
    # replaced: longer, but different first bytes
    write(s1, [claude_line(f"n{i}", f"q{i}", "2026-03-02T10:00:00Z") for i in range(4)])
    replaced = book(books, logs(tmp_path))
    assert replaced.report.files_restarted == 1 and replaced.summary.new == 4
    assert record_count(books) == 7
    assert cursors(books, "claude_code")[str(s1.resolve())].position == s1.stat().st_size


def test_streaming_snapshots_keep_the_whole_reply(books: Database, tmp_path: Path) -> None:
    write(
        tmp_path / "projects" / "p" / "s.jsonl",
        [
            claude_line("m1", "r1", "2026-03-01T10:00:00Z", output=3),
            claude_line("m1", "r1", "2026-03-01T10:00:01Z", output=9),
            claude_line("m1", "r1", "2026-03-01T10:00:04Z", output=159),
            claude_line("m1", "r1", "2026-03-01T10:00:04Z", output=159),
        ],
    )
    book(books, logs(tmp_path))
    [row] = records(books)
    assert row.output_tokens == 159
    assert row.used_utc == datetime(2026, 3, 1, 10, 0, 4, tzinfo=UTC)


def test_a_reply_still_streaming_is_left_for_the_next_run(books: Database, tmp_path: Path) -> None:
    recent = (NOW - timedelta(seconds=30)).isoformat()
    path = write(
        tmp_path / "projects" / "p" / "s.jsonl",
        [
            claude_line("m1", "r1", "2026-03-01T10:00:00Z"),
            claude_line("m2", "r2", recent, output=5),
            user_line(recent),
        ],
    )
    first = book(books, logs(tmp_path))
    assert first.summary.new == 1
    held_at = cursors(books, "claude_code")[str(path.resolve())].position
    assert held_at == len(path.read_bytes().split(b"\n")[0]) + 1
    write(path, [claude_line("m2", "r2", recent, output=50)], mode="a")
    later = ClaudeCodeLogs([tmp_path], now=NOW + timedelta(minutes=5), hostname="h")
    second = book(books, later, now=NOW + timedelta(minutes=5))
    assert second.summary.new == 1
    assert [r.output_tokens for r in records(books)] == [100, 50]


def test_usage_the_gateway_already_metered_is_not_booked_again(
    books: Database, tmp_path: Path
) -> None:
    with books.begin() as conn:
        conn.execute(
            insert(usage_records).values(
                request_id="gw-1", source="gateway", provider="anthropic", model=SONNET,
                input_tokens=1, output_tokens=1, cache_read_tokens=0, cache_write_tokens=0,
                cache_write_1h_tokens=0, reasoning_tokens=0, cost_nanousd=1, estimated=0,
                stream=0, status=200, used_utc=NOW, recorded_utc=NOW, message_id="msg_b",
            )
        )  # fmt: skip
    outcome = book(books, logs(tree(tmp_path / "claude")))
    assert outcome.summary.via_gateway == 1
    assert "claude_code:msg_b:req_b" not in {r.request_id for r in records(books)}


def test_attribution_by_person_hostname_or_claude_account(books: Database, tmp_path: Path) -> None:
    root = tree(tmp_path / "claude")
    with books.begin() as conn:
        ada = OrgRepo(conn).person_id("ada@acme.io")
        bob = OrgRepo(conn).person_id("bob@acme.io")
        ImportsRepo(conn).add_identity(Identity(IdentityKind.HOSTNAME, "Ada-Laptop"), ada, NOW)
    outcome = book(books, logs(root))
    assert outcome.summary.unattributed == 0
    assert {r.person_id for r in records(books)} == {ada}

    account = '{"accountUuid": "ACC-1", "emailAddress": "x@y.z"}'
    (root / ".claude.json").write_text('{"userID": "abc123", "oauthAccount": ' + account + "}")
    ids = account_identities(root, tmp_path)
    assert ids == (
        Identity(IdentityKind.EMAIL, "x@y.z"),
        Identity(IdentityKind.ACCOUNT, "ACC-1"),
        Identity(IdentityKind.ACCOUNT, "abc123"),
    )
    with books.begin() as conn:
        ImportsRepo(conn).add_identity(Identity(IdentityKind.ACCOUNT, "acc-1"), bob, NOW)
    other = tmp_path / "other"
    write(other / "projects" / "p" / "s.jsonl", [claude_line("m9", "r9", "2026-03-05T10:00:00Z")])
    source = ClaudeCodeLogs([other], now=NOW, hostname="ada-laptop", root_identities={other: ids})
    book(books, source)
    assert {r.request_id: r.person_id for r in records(books)}["claude_code:m9:r9"] == bob

    write(other / "projects" / "p" / "s.jsonl", [claude_line("m8", "r8", "2026-03-05T10:00:00Z")],
          mode="a")  # fmt: skip
    book(books, logs(other, person_email="bob@acme.io"))  # --person beats the hostname
    assert {r.request_id: r.person_id for r in records(books)}["claude_code:m8:r8"] == bob


def test_unmapped_users_are_booked_unattributed_and_named(books: Database, tmp_path: Path) -> None:
    outcome = book(books, logs(tree(tmp_path / "claude")))
    assert outcome.summary.unattributed == 4
    assert outcome.summary.unknown_identities == {"hostname:ada-laptop": 4}
    assert {r.person_id for r in records(books)} == {None}


def test_dry_run_writes_nothing_and_moves_no_cursor(books: Database, tmp_path: Path) -> None:
    outcome = book(books, logs(tree(tmp_path / "claude")), dry_run=True)
    assert outcome.summary.new == 4 and outcome.dry_run
    assert record_count(books) == 0
    assert cursors(books, "claude_code") == {}


def test_keys_without_request_or_message_ids(books: Database, tmp_path: Path) -> None:
    write(
        tmp_path / "projects" / "p" / "s.jsonl",
        [
            claude_line("m1", None, "2026-03-01T10:00:00Z"),
            claude_line("m1", None, "2026-03-01T10:00:00Z"),
            claude_line(None, None, "2026-03-01T10:00:00Z", uuid="line-7"),
            claude_line("m" * 120, "r" * 120, "2026-03-01T10:00:00Z"),
        ],
    )
    book(books, logs(tmp_path))
    ids = {r.request_id for r in records(books)}
    hashed = ids - {"claude_code:m1", "claude_code:uuid:line-7"}
    assert len(ids) == 3 and len(hashed) == 1
    [long_key] = hashed
    assert long_key.startswith("claude_code:sha256:") and len(long_key) <= 100


def test_bad_usage_values_are_line_problems(books: Database, tmp_path: Path) -> None:
    write(
        tmp_path / "projects" / "p" / "s.jsonl",
        [
            claude_line("m1", "r1", "2026-03-01T10:00:00Z", output=-5),
            claude_line("m2", "r2", "yesterday"),
            claude_line("m3", "r3", "2026-03-01T10:00:00Z", model=""),
            claude_line("m4", "r4", "2026-03-01T10:00:00Z"),
        ],
    )
    outcome = book(books, logs(tmp_path))
    lines = [p.line for _, p in outcome.report.problems]
    assert lines == [1, 2, 3]
    messages = " ".join(p.message for _, p in outcome.report.problems)
    assert "output_tokens" in messages and "yesterday" in messages and "model" in messages
    assert record_count(books) == 1


def test_default_roots_follow_claude_config_dir_and_the_home_defaults(tmp_path: Path) -> None:
    home = tmp_path / "home"
    for d in (home / ".claude", home / ".config" / "claude", tmp_path / "a", tmp_path / "b"):
        (d / "projects").mkdir(parents=True)
    (tmp_path / "c").mkdir()  # no projects folder: ignored
    env = {"CLAUDE_CONFIG_DIR": f"{tmp_path / 'a'}, {tmp_path / 'b'},{tmp_path / 'c'},"}
    assert default_roots(env, home) == [
        tmp_path / "a",
        tmp_path / "b",
        home / ".config" / "claude",
        home / ".claude",
    ]
    assert default_roots({}, tmp_path / "nobody") == []


def test_a_config_folder_given_as_a_path_means_its_projects(
    books: Database, tmp_path: Path
) -> None:
    root = tree(tmp_path / "claude")
    write(root / "history.jsonl", ['{"display": "usage stats please"}'])
    source = logs(root)
    assert all("projects" in f.parts for f in source.files())
    assert book(books, source).summary.new == 4


def test_a_held_reply_is_booked_later_even_if_the_file_never_changes(
    books: Database, tmp_path: Path
) -> None:
    recent = (NOW - timedelta(seconds=10)).isoformat()
    write(tmp_path / "projects" / "p" / "s.jsonl", [claude_line("m1", "r1", recent)])
    assert book(books, logs(tmp_path)).summary.new == 0
    assert book(books, logs(tmp_path)).summary.new == 0  # still within the settle time
    later = NOW + timedelta(minutes=3)
    outcome = book(books, ClaudeCodeLogs([tmp_path], now=later, hostname="h"), now=later)
    assert outcome.summary.new == 1 and record_count(books) == 1
    assert book(books, ClaudeCodeLogs([tmp_path], now=later)).report.files_read == 0
