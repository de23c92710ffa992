"""Incremental reading: cursors judge files unchanged, appended, truncated or replaced."""

from __future__ import annotations

import os
from pathlib import Path

from tokenwage.importers.files import (
    FINGERPRINT_BYTES,
    broken_json,
    discover,
    first_line,
    last_line_containing,
    line_number_at,
    read_new,
)


def test_complete_lines_only_and_an_unchanged_file_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"one\ntwo\nthr")
    chunk = read_new(path, None)
    assert chunk is not None and (chunk.start, chunk.data) == (0, b"one\ntwo\n")
    cursor = chunk.cursor(len(chunk.data))
    assert (cursor.position, cursor.size) == (8, 11)
    tail = read_new(path, cursor)  # the unfinished line is looked at again, not consumed
    assert tail is not None and (tail.start, tail.data) == (8, b"")
    done = tmp_path / "done.jsonl"
    done.write_bytes(b"one\n")
    first = read_new(done, None)
    assert first is not None and read_new(done, first.cursor(len(first.data))) is None
    with path.open("ab") as f:
        f.write(b"ee\n")
    later = read_new(path, cursor)
    assert later is not None and (later.start, later.data, later.restarted) == (
        8,
        b"three\n",
        False,
    )
    moved = later.cursor(len(later.data))
    with path.open("ab") as f:
        f.write(b"four\n")
    again = read_new(path, moved)
    assert again is not None and (again.start, again.data, again.restarted) == (
        14,
        b"four\n",
        False,
    )


def test_truncated_and_replaced_files_restart(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"x" * (FINGERPRINT_BYTES + 10) + b"\n")
    chunk = read_new(path, None)
    assert chunk is not None
    cursor = chunk.cursor(len(chunk.data))
    path.write_bytes(b"short\n")
    truncated = read_new(path, cursor)
    assert truncated is not None and truncated.restarted and truncated.data == b"short\n"
    path.write_bytes(b"y" + b"x" * (FINGERPRINT_BYTES + 20) + b"\n")
    replaced = read_new(path, cursor)
    assert replaced is not None and replaced.restarted and replaced.start == 0
    # same size, new mtime, same first bytes: only appended-to files differ like this
    path.write_bytes(b"x" * (FINGERPRINT_BYTES + 10) + b"\n")
    os.utime(path, ns=(1, 1))
    touched = read_new(path, cursor)
    assert touched is not None and not touched.restarted and touched.data == b""


def test_line_numbers_and_scans_across_block_boundaries(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    lines = [b'{"n":%d,"pad":"%s"}' % (i, b"p" * (i % 700)) for i in range(6000)]
    lines[10] = b'{"type":"turn_context","n":10}'
    lines[4000] = b'{"type":"turn_context","n":4000}'
    path.write_bytes(b"\n".join(lines) + b"\n")
    offset = sum(len(line) + 1 for line in lines[:5000])
    assert line_number_at(path, offset) == 5001
    assert last_line_containing(path, offset, b"turn_context") == lines[4000]
    offset_3000 = sum(len(line) + 1 for line in lines[:3000])
    assert last_line_containing(path, offset_3000, b"turn_context") == lines[10]
    assert last_line_containing(path, offset_3000, b"nowhere") is None
    assert first_line(path) == lines[0]


def test_broken_json_parses_only_what_does_not_look_like_an_object() -> None:
    assert broken_json(b'{"a":1}') is None
    assert broken_json(b"{half") is not None and "not valid JSON" in (broken_json(b"{half") or "")
    assert broken_json(b"[1,2]") == "line is not a JSON object"
    assert broken_json(b"   ") is None
    assert broken_json(b' {"a":1}\r') is None


def test_discover_resolves_and_deduplicates(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    f = tmp_path / "a" / "b" / "s.jsonl"
    f.write_text("{}\n")
    (tmp_path / "a" / "b" / "notes.txt").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "a")
    found = discover([tmp_path / "a", tmp_path / "link", f, tmp_path / "missing"], "*.jsonl")
    assert found == [f.resolve()]
