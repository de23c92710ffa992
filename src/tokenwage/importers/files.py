"""Incremental reading of append-only log files, with a cursor per file.

A run reads each file from where the previous run stopped (its :class:`Cursor`) and hands
the new bytes to a parser; the parser says how far it consumed them, and that becomes the
new cursor, saved in the same transaction as the records (``importers.run_import``).

How a file is judged against its cursor:

* same ``size`` and ``mtime_ns``, and read to its end: **unchanged**, not even opened (a
  file whose tail was left for later, say a reply still streaming, is read from there);
* smaller than the cursor's ``position``, or its first bytes no longer hash to the cursor's
  ``fingerprint`` (SHA-256 of the first ``min(4096, position)`` bytes, which appending never
  changes): **replaced or truncated**, read again from 0 (deduplication keeps the records
  already booked from counting twice);
* otherwise **appended**: read from ``position``.

Only complete lines are consumed (``whole_lines=True``): a line still being written, without
its ``\\n``, is left for the next run. Line numbers for problems are counted lazily, only
when a chunk that starts mid-file has a bad line.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from tokenwage.core.errors import LineProblem
from tokenwage.storage.imports_repo import Cursor

FINGERPRINT_BYTES = 4096
MAX_PROBLEMS_KEPT = 1000
_BLOCK = 1 << 20


@dataclass(slots=True)
class Chunk:
    """The new bytes of one file: ``data`` starts at byte ``start`` of the file."""

    path: Path
    location: str
    start: int
    data: bytes
    size: int
    mtime_ns: int
    restarted: bool

    def cursor(self, consumed: int) -> Cursor:
        """The cursor after consuming ``data[:consumed]``."""
        position = self.start + consumed
        return Cursor(
            location=self.location,
            position=position,
            size=self.size,
            mtime_ns=self.mtime_ns,
            fingerprint=fingerprint(self.path, position),
        )

    def first_line_number(self) -> int:
        """The 1-based line number of ``data``'s first line in the file."""
        return 1 if self.start == 0 else line_number_at(self.path, self.start)


@dataclass
class ReadReport:
    """What reading the files found, beside the records: for the summary and the cursors."""

    files_seen: int = 0
    files_read: int = 0
    files_restarted: int = 0
    bytes_read: int = 0
    lines_read: int = 0
    usage_lines: int = 0
    bad_lines: int = 0
    problems: list[tuple[str, LineProblem]] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    cursors: dict[str, Cursor] = field(default_factory=dict)

    def problem(self, path: Path | str, line: int, message: str) -> None:
        self.bad_lines += 1
        if len(self.problems) < MAX_PROBLEMS_KEPT:
            self.problems.append((str(path), LineProblem(line, message)))

    def skip(self, why: str, count: int = 1) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + count


def read_new(path: Path, previous: Cursor | None, *, whole_lines: bool = True) -> Chunk | None:
    """The bytes of ``path`` after ``previous``; None when the file is unchanged."""
    st = path.stat()
    location = str(path)
    if (
        previous is not None
        and (st.st_size, st.st_mtime_ns) == (previous.size, previous.mtime_ns)
        and previous.position == st.st_size
    ):
        return None  # unchanged and read to the end (a held-back tail is read again)
    start = previous.position if previous is not None else 0
    restarted = False
    with path.open("rb") as f:
        if previous is not None and start > 0:
            head = f.read(min(FINGERPRINT_BYTES, start))
            if st.st_size < start or _sha256(head) != previous.fingerprint:
                start, restarted = 0, True
        f.seek(start)
        data = f.read(max(st.st_size - start, 0))
    if whole_lines:
        data = data[: data.rfind(b"\n") + 1]
    return Chunk(path, location, start, data, st.st_size, st.st_mtime_ns, restarted)


def pending_bytes(paths: Iterable[Path], cursors: dict[str, Cursor]) -> int:
    """Roughly how many bytes a run will read (for a progress bar): sizes past the cursors."""
    total = 0
    for path in paths:
        try:
            size = path.stat().st_size
        except OSError:
            continue
        c = cursors.get(str(path))
        total += size if c is None or size < c.position else size - c.position
    return total


def fingerprint(path: Path, position: int) -> str:
    """SHA-256 of the first ``min(4096, position)`` bytes: unchanged by appending."""
    with path.open("rb") as f:
        return _sha256(f.read(min(FINGERPRINT_BYTES, position)))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def line_number_at(path: Path, offset: int) -> int:
    """The 1-based number of the line that starts at byte ``offset``."""
    newlines = 0
    with path.open("rb") as f:
        left = offset
        while left > 0:
            block = f.read(min(_BLOCK, left))
            if not block:
                break
            newlines += block.count(b"\n")
            left -= len(block)
    return newlines + 1


def first_line(path: Path, limit: int = 64 * _BLOCK) -> bytes:
    """The first line of ``path`` without its newline (at most ``limit`` bytes)."""
    out = bytearray()
    with path.open("rb") as f:
        while len(out) < limit:
            block = f.read(_BLOCK)
            if not block:
                break
            cut = block.find(b"\n")
            if cut >= 0:
                out += block[:cut]
                break
            out += block
    return bytes(out)


def last_line_containing(path: Path, before: int, needle: bytes) -> bytes | None:
    """The last complete line ending at or before byte ``before`` that contains ``needle``."""
    with path.open("rb") as f:
        end = before
        carry = b""  # the start of a line whose beginning is further back
        while end > 0:
            begin = max(0, end - _BLOCK)
            f.seek(begin)
            buf = f.read(end - begin) + carry
            lines = buf.split(b"\n")
            carry = lines[0] if begin > 0 else b""
            complete = lines[1:] if begin > 0 else lines
            for line in reversed(complete):
                if needle in line:
                    return line
            end = begin
    return None


def discover(roots: Iterable[Path], pattern: str) -> list[Path]:
    """Files matching ``pattern`` under each root (a root that is a file is taken as is),
    resolved, without repeats, in a stable order."""
    seen: dict[str, Path] = {}
    for root in roots:
        root = root.expanduser()
        if root.is_file():
            found: Iterator[Path] = iter([root])
        elif root.is_dir():
            found = root.rglob(pattern)
        else:
            continue
        for path in found:
            if path.is_file():
                resolved = path.resolve()
                seen.setdefault(str(resolved), resolved)
    return [seen[k] for k in sorted(seen)]


def split_lines(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """``(index, start offset, line)`` for each line of ``data`` (without the newline)."""
    offset = 0
    for index, line in enumerate(data.split(b"\n")):
        yield index, offset, line
        offset += len(line) + 1


def broken_json(line: bytes) -> str | None:
    """Why ``line`` is not a JSON object, or None. Cheap for the lines a parser skips: only
    a line that does not start with ``{`` and end with ``}`` is actually parsed."""
    if line[:1] == b"{" and line[-1:] == b"}":
        return None
    stripped = line.strip()
    if not stripped:
        return None
    try:
        obj = orjson.loads(stripped)
    except orjson.JSONDecodeError as exc:
        return f"not valid JSON ({exc})"
    return None if isinstance(obj, dict) else "line is not a JSON object"


def env_paths(value: str | None) -> list[Path]:
    """Comma-separated folders from an environment variable (blank entries dropped)."""
    if not value:
        return []
    return [Path(p.strip()).expanduser() for p in value.split(",") if p.strip()]
