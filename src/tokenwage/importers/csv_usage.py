"""The generic usage CSV: any tool's usage, one row per request or per aggregated bucket.

Columns (header required, order free, UTF-8, an optional BOM)::

    timestamp,email,provider,model,input_tokens,output_tokens,cache_read_tokens,
    cache_write_tokens,reasoning_tokens,request_id,session_id,project

* required: ``timestamp`` (ISO 8601; a bare date is midnight UTC, a time without an offset
  is UTC), ``provider``, ``model`` and at least one ``*_tokens`` column;
* tokens follow tokenwage's convention: ``input_tokens`` is **uncached** input,
  ``output_tokens`` **includes** ``reasoning_tokens``; an empty cell is 0;
* ``email`` is who used it (a row without one is booked to nobody: unattributed);
* ``request_id`` identifies the row: the provider's request id when there is one (so usage
  that also went through the gateway is never counted twice). A row without it is
  identified by its content, so two identical rows without ``request_id`` count once.

Bad rows follow the project rule "bad input: nothing written": the whole file is refused
with every bad line number (:class:`~tokenwage.core.errors.BadFile`), unless ``skip_bad``,
which imports the good rows and reports the bad ones. Unknown columns are refused (a typo
like ``input`` for ``input_tokens`` would otherwise read as zero tokens).
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, time
from pathlib import Path

from tokenwage.core.errors import BadFile, InvalidInput, LineProblem
from tokenwage.core.imported import Identity, IdentityKind, ImportedUsage
from tokenwage.core.usage import TokenUsage
from tokenwage.importers import Progress
from tokenwage.importers.files import Chunk, ReadReport, first_line, read_new
from tokenwage.storage.imports_repo import Cursor

SOURCE = "csv"
TOKEN_COLUMNS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)
COLUMNS = (
    "timestamp",
    "email",
    "provider",
    "model",
    *TOKEN_COLUMNS,
    "request_id",
    "session_id",
    "project",
)
REQUIRED = ("timestamp", "provider", "model")
_LIMITS = {"provider": 64, "model": 200, "session_id": 200, "project": 500, "email": 320}


class CsvUsage:
    """New rows of one usage CSV."""

    name = SOURCE

    def __init__(
        self, path: Path, *, skip_bad: bool = False, person_email: str | None = None
    ) -> None:
        self.path = path.expanduser().resolve()
        self.skip_bad = skip_bad
        self.person = (Identity(IdentityKind.EMAIL, person_email),) if person_email else ()

    def files(self) -> list[Path]:
        if not self.path.is_file():
            raise InvalidInput(f"no such file: {self.path}")
        return [self.path]

    def records(
        self, cursors: Mapping[str, Cursor], report: ReadReport, progress: Progress | None
    ) -> Iterator[ImportedUsage]:
        report.files_seen += 1
        self.files()  # a missing file is InvalidInput, not a traceback
        chunk = read_new(self.path, cursors.get(str(self.path)), whole_lines=False)
        if chunk is None:
            return
        report.files_read += 1
        report.files_restarted += chunk.restarted
        report.bytes_read += len(chunk.data)
        records, problems = self.parse(chunk, report)
        if problems and not self.skip_bad:
            raise BadFile(str(self.path), problems)
        for p in problems:
            report.problem(self.path, p.line, p.message)
        report.cursors[chunk.location] = chunk.cursor(len(chunk.data))
        if progress is not None:
            progress(len(chunk.data), report.lines_read)
        yield from records

    def parse(
        self, chunk: Chunk, report: ReadReport
    ) -> tuple[list[ImportedUsage], list[LineProblem]]:
        """Every row of ``chunk`` as a record, or the problem with it."""
        text = _decode(chunk.data if chunk.start == 0 else first_line(chunk.path) + b"\n")
        header_reader = csv.reader(io.StringIO(text))
        header = [h.strip().lower() for h in next(header_reader, [])]
        self._check_header(header)
        if chunk.start == 0:
            body, first = text, 0  # the header is the first row read below
        else:
            body, first = _decode(chunk.data), chunk.first_line_number() - 1
        reader = csv.reader(io.StringIO(body, newline=""))
        if chunk.start == 0:
            next(reader, None)
        records: list[ImportedUsage] = []
        problems: list[LineProblem] = []
        line = reader.line_num
        for row in reader:
            line_no, line = first + line + 1, reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            report.lines_read += 1
            try:
                records.append(self._record(dict(zip(header, row, strict=False)), row, header))
            except InvalidInput as exc:
                problems.append(LineProblem(line_no, str(exc)))
        report.usage_lines += len(records)
        return records, problems

    def _check_header(self, header: list[str]) -> None:
        problems = []
        unknown = [h for h in header if h not in COLUMNS]
        if unknown:
            problems.append(f"unknown column(s) {', '.join(map(repr, unknown))}")
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        if not any(c in header for c in TOKEN_COLUMNS):
            problems.append(f"no token column; give at least one of {', '.join(TOKEN_COLUMNS)}")
        if len(set(header)) != len(header):
            problems.append("a column appears twice")
        if problems:
            expected = ",".join(COLUMNS)
            message = "; ".join(problems) + f". The columns are: {expected}"
            raise BadFile(str(self.path), [LineProblem(1, message)])

    def _record(self, cells: dict[str, str], row: list[str], header: list[str]) -> ImportedUsage:
        if len(row) != len(header):
            raise InvalidInput(f"{len(row)} cells but the header has {len(header)} columns")
        values = {k: v.strip() for k, v in cells.items()}
        for column, limit in _LIMITS.items():
            if len(values.get(column, "")) > limit:
                raise InvalidInput(f"{column} is longer than {limit} characters")
        for column in REQUIRED:
            if not values.get(column):
                raise InvalidInput(f"{column} is empty")
        counts = {c: _count(values.get(c, ""), c) for c in TOKEN_COLUMNS}
        usage = TokenUsage(
            input_tokens=counts["input_tokens"],
            output_tokens=counts["output_tokens"],
            cache_read_tokens=counts["cache_read_tokens"],
            cache_write_tokens=counts["cache_write_tokens"],
            reasoning_tokens=counts["reasoning_tokens"],
        )
        email = values.get("email") or None
        request_id = values.get("request_id") or None
        if request_id is not None and len(request_id) > 100 - len(SOURCE) - 1:
            raise InvalidInput("request_id is longer than 95 characters")
        key = request_id or "row:" + hashlib.sha256("\x1f".join(row).encode()).hexdigest()[:40]
        identities = self.person + ((Identity(IdentityKind.EMAIL, email),) if email else ())
        return ImportedUsage(
            source=SOURCE,
            key=key,
            used_utc=_instant(values["timestamp"]),
            provider=values["provider"].lower(),
            model=values["model"],
            usage=usage,
            identities=identities,
            session_id=values.get("session_id") or None,
            project=values.get("project") or None,
            upstream_request_id=request_id,
        )


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"the file is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None


def _count(text: str, column: str) -> int:
    if not text:
        return 0
    cleaned = text.replace("_", "").replace(",", "")
    if not cleaned.isdigit() or not cleaned.isascii():
        raise InvalidInput(f"{column} {text!r} is not a whole number of tokens")
    return int(cleaned)


def _instant(text: str) -> datetime:
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), tzinfo=UTC)
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"timestamp {text!r} is not ISO 8601, e.g. 2026-03-01T14:05:00Z or 2026-03-01"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
