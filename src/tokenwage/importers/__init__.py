"""Importers: usage that bypassed the gateway, read from agent logs and exports.

Each module turns one kind of source into :class:`~tokenwage.core.imported.ImportedUsage`
records; :func:`run_import` books them through the one booking path
(``services.importing.import_usage``) and moves the file cursors, all in the caller's one
transaction, so a run is written whole or not at all and a second run reads only what is new.

* ``claude_code`` - Claude Code transcripts (``~/.claude/projects/**/*.jsonl``)
* ``codex`` - Codex CLI rollouts (``~/.codex/sessions/**/rollout-*.jsonl``)
* ``csv_usage`` - the generic CSV (see ``docs/importers.md`` for the columns)
* ``files`` - incremental reading with cursors, shared by all of them
"""

from __future__ import annotations

import gc
import socket
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import orjson
from sqlalchemy import Connection

from tokenwage.core.errors import InvalidInput
from tokenwage.core.imported import ChargeMode, ImportedUsage
from tokenwage.importers.files import Chunk, ReadReport, pending_bytes, read_new
from tokenwage.services.importing import ImportSummary, import_usage
from tokenwage.services.pricing import pricer_for
from tokenwage.storage.imports_repo import Cursor, ImportsRepo

__all__ = [
    "ImportOutcome",
    "LogSource",
    "Progress",
    "Source",
    "collector_paused",
    "default_hostname",
    "describe_error",
    "parse_timestamp",
    "run_import",
    "total_pending_bytes",
]

# Called with (bytes read, lines read) since the last call, for a progress bar.
Progress = Callable[[int, int], None]


class Source(Protocol):
    """A kind of input: finds its files and turns their new bytes into records."""

    name: str

    def files(self) -> list[Path]: ...

    def records(
        self, cursors: Mapping[str, Cursor], report: ReadReport, progress: Progress | None
    ) -> Iterator[ImportedUsage]: ...


class LogSource:
    """A source of append-only JSONL files; subclasses parse one file's new bytes."""

    name = "log"
    whole_lines = True

    def __init__(self, paths: list[Path]) -> None:
        self._paths = paths
        self._files: list[Path] | None = None

    def files(self) -> list[Path]:
        if self._files is None:
            self._files = self.discover(self._paths)
        return self._files

    def discover(self, paths: list[Path]) -> list[Path]:
        raise NotImplementedError

    def parse(self, chunk: Chunk, report: ReadReport) -> tuple[list[ImportedUsage], int]:
        """Records from ``chunk.data`` and how many of its bytes were consumed."""
        raise NotImplementedError

    def records(
        self, cursors: Mapping[str, Cursor], report: ReadReport, progress: Progress | None
    ) -> Iterator[ImportedUsage]:
        for path in self.files():
            report.files_seen += 1
            try:
                chunk = read_new(path, cursors.get(str(path)), whole_lines=self.whole_lines)
            except FileNotFoundError:  # removed since it was found: nothing to read
                continue
            if chunk is None:
                continue
            report.files_read += 1
            report.files_restarted += chunk.restarted
            report.bytes_read += len(chunk.data)
            lines_before = report.lines_read
            records, consumed = self.parse(chunk, report)
            report.cursors[chunk.location] = chunk.cursor(consumed)
            if progress is not None:
                progress(len(chunk.data), report.lines_read - lines_before)
            yield from records


@dataclass(frozen=True)
class ImportOutcome:
    summary: ImportSummary
    report: ReadReport
    dry_run: bool
    source: str


def run_import(
    conn: Connection,
    source: Source,
    *,
    mode: ChargeMode,
    now: datetime,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportOutcome:
    """Read what is new in ``source``, book it, and (unless ``dry_run``) move the cursors,
    all inside ``conn``'s transaction."""
    repo = ImportsRepo(conn)
    cursors = repo.cursors(source.name)
    report = ReadReport()
    with collector_paused():
        summary = import_usage(
            conn,
            source.records(cursors, report, progress),
            mode=mode,
            pricer=pricer_for(conn),
            now=now,
            dry_run=dry_run,
        )
    if not dry_run:
        repo.save_cursors(source.name, report.cursors.values(), now)
    return ImportOutcome(summary, report, dry_run, source.name)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a run. An import allocates millions of
    short-lived, acyclic objects (parsed lines, records, rows); the collector would walk the
    live ones again and again, about a fifth of a million-line import's time. Reference
    counting still frees them; the collector resumes when the run ends."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def total_pending_bytes(source: Source, conn: Connection) -> int:
    """How many bytes ``source`` has past its cursors (for sizing a progress bar)."""
    return pending_bytes(source.files(), ImportsRepo(conn).cursors(source.name))


def parse_timestamp(value: Any) -> datetime:
    """An ISO 8601 timestamp with a time zone, as logs write them (``...Z`` included)."""
    if not isinstance(value, str):
        raise InvalidInput(f"timestamp must be an ISO 8601 string, got {value!r}")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise InvalidInput(f"timestamp {value!r} has no time zone")
    return parsed


def describe_error(exc: Exception) -> str:
    """A bad line's problem, for the report."""
    if isinstance(exc, orjson.JSONDecodeError):
        return f"not valid JSON ({exc})"
    return str(exc)


def default_hostname() -> str:
    """This machine's name, for the ``hostname`` identity."""
    return socket.gethostname() or "unknown"
