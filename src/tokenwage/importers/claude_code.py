"""Claude Code transcripts: ``<config dir>/projects/<project>/<session>.jsonl``.

Every line is one JSON object. Assistant lines carry ``message.usage`` in Anthropic's own
convention (uncached ``input_tokens``, ``cache_creation_input_tokens`` with an optional
``cache_creation.ephemeral_5m/1h_input_tokens`` split, ``cache_read_input_tokens``,
``output_tokens``), ``message.model``, ``message.id``, ``requestId``, ``timestamp``,
``sessionId`` and ``cwd``.

What counts, and how it relates to ccusage (which reads the same files):

* A line counts when ``message.usage`` is an object, like ccusage; other lines are skipped
  before parsing when their bytes do not even contain ``"usage"``.
* **One reply, many lines.** Claude Code writes a line per content block of a reply, each
  with the same ``message.id`` and ``requestId``. They are one request, keyed
  ``message.id:requestId`` exactly as ccusage keys them (``message.id`` alone when there is
  no ``requestId``; the line's ``uuid`` when there is no ``message.id``). Within a file the
  line with the most output tokens wins: when Claude Code logs streaming snapshots with a
  growing ``output_tokens``, the last one is the whole reply (ccusage 18 keeps the first).
  Across files (resumed sessions and sidechain transcripts replay earlier replies) the first
  booked copy wins, so a replay never counts twice.
* ``<synthetic>`` replies (Claude Code's own error notices, zero tokens) are skipped.
* A reply whose last line is newer than ``SETTLE_SECONDS`` before the run may still be
  streaming: it is left, with the lines after it, for the next run.
* ``usage.speed == "fast"`` books the model as ``<model>-fast``, as ccusage names it, so
  fast mode is never priced as the normal model.

Attribution: the transcript names no person. Records carry, in order, the ``--person``
email, the account ids and email of the Claude login found in the config folder's
``.claude.json`` (only when the folders were discovered, not given), a ``userID`` on the
line if Claude Code ever writes one, and this machine's hostname.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from tokenwage.core.errors import InvalidInput
from tokenwage.core.imported import Identity, IdentityKind, ImportedUsage
from tokenwage.core.money import Money
from tokenwage.core.usage import TokenUsage
from tokenwage.importers import LogSource, describe_error, parse_timestamp
from tokenwage.importers.files import (
    Chunk,
    ReadReport,
    broken_json,
    discover,
    env_paths,
)

SOURCE = "claude_code"
PROVIDER = "anthropic"
SETTLE_SECONDS = 120
MAX_KEY_CHARS = 100 - len(SOURCE) - 1  # usage_records.request_id is 100 characters
_USAGE = b'"usage"'


def default_roots(env: Mapping[str, str], home: Path) -> list[Path]:
    """Claude config folders: ``$CLAUDE_CONFIG_DIR`` (comma-separated), ``~/.config/claude``
    and ``~/.claude``, those that exist with a ``projects`` folder."""
    candidates = [
        *env_paths(env.get("CLAUDE_CONFIG_DIR")),
        Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "claude",
        home / ".claude",
    ]
    roots: list[Path] = []
    for c in candidates:
        if (c / "projects").is_dir() and c.resolve() not in [r.resolve() for r in roots]:
            roots.append(c)
    return roots


def account_identities(config_dir: Path, home: Path) -> tuple[Identity, ...]:
    """The Claude login's ids from ``.claude.json`` (the folder's, or ``~/.claude.json``
    for ``~/.claude``): ``userID`` and ``oauthAccount.accountUuid`` as accounts, and
    ``oauthAccount.emailAddress``. No secrets are read: that file holds none."""
    candidates = [config_dir / ".claude.json"]
    if config_dir.resolve() == (home / ".claude").resolve():
        candidates.append(home / ".claude.json")
    for path in candidates:
        try:
            data = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            continue
        if not isinstance(data, dict):
            continue
        oauth = data.get("oauthAccount")
        account: dict[str, Any] = oauth if isinstance(oauth, dict) else {}
        found = [
            (IdentityKind.EMAIL, account.get("emailAddress")),
            (IdentityKind.ACCOUNT, account.get("accountUuid")),
            (IdentityKind.ACCOUNT, data.get("userID")),
        ]
        return tuple(Identity(k, v) for k, v in found if isinstance(v, str) and v.strip())
    return ()


@dataclass(slots=True)
class _Reply:
    """The lines of one reply seen so far in a file: the best one wins."""

    obj: dict[str, Any]  # the line with the most output tokens
    offset: int  # where that line starts in the chunk
    output: int
    first_offset: int  # where the reply's first line starts
    last_timestamp: Any  # the timestamp of its latest line


class ClaudeCodeLogs(LogSource):
    """New usage in Claude Code transcripts under ``paths`` (files or folders)."""

    name = SOURCE

    def __init__(
        self,
        paths: Sequence[Path],
        *,
        now: datetime,
        hostname: str | None = None,
        person_email: str | None = None,
        root_identities: Mapping[Path, tuple[Identity, ...]] | None = None,
    ) -> None:
        super().__init__(list(paths))
        self.hold_after = now - timedelta(seconds=SETTLE_SECONDS)
        self.hostname = hostname
        head = (Identity(IdentityKind.EMAIL, person_email),) if person_email else ()
        tail = (Identity(IdentityKind.HOSTNAME, hostname),) if hostname else ()
        self._head, self._tail = head, tail
        self._root_ids = {p.resolve(): ids for p, ids in (root_identities or {}).items()}
        self._line_ids: dict[tuple[str, Path | None], tuple[Identity, ...]] = {}
        self._bases: dict[str, int] = {}

    def discover(self, paths: list[Path]) -> list[Path]:
        # a Claude config folder given as a path means its projects folder
        roots = [p / "projects" if (p / "projects").is_dir() else p for p in paths]
        return discover(roots, "*.jsonl")

    def parse(self, chunk: Chunk, report: ReadReport) -> tuple[list[ImportedUsage], int]:
        replies, lines = self._replies(chunk, report)
        report.lines_read += lines
        ctx = _FileContext(chunk.path, self._root_for(chunk.path))
        consumed = len(chunk.data)
        records: list[tuple[int, ImportedUsage]] = []
        for key, reply in replies.items():
            try:
                record = self._record(key, reply.obj, ctx)
                last = reply.last_timestamp
                latest = record.used_utc if last == reply.obj["timestamp"] else None
                streaming = (latest or parse_timestamp(last)) > self.hold_after
            except (InvalidInput, ValueError) as exc:
                self._problem(chunk, report, describe_error(exc), offset=reply.offset)
                continue
            if streaming:
                report.skip("replies still streaming (left for the next run)")
                consumed = min(consumed, reply.first_offset)
            else:
                records.append((reply.first_offset, record))
        return [r for first, r in records if first < consumed], consumed

    def _replies(self, chunk: Chunk, report: ReadReport) -> tuple[dict[str, _Reply], int]:
        """Every reply with usage in ``chunk``, keyed. Two cheap passes over the bytes: one
        checks that each line looks like a JSON object (only odd-looking lines are parsed),
        the other finds the lines that mention ``"usage"`` with ``bytes.find`` on the whole
        chunk and parses just those."""
        data = chunk.data
        broken = self._check_shapes(chunk, report)
        replies: dict[str, _Reply] = {}
        repeats = 0
        pos = data.find(_USAGE)
        while pos >= 0:
            start = data.rfind(b"\n", 0, pos) + 1
            end = data.find(b"\n", pos)
            end = len(data) if end < 0 else end
            pos = data.find(_USAGE, end)
            if start in broken:
                continue
            try:
                found = _usage_line(data[start:end], report)
            except (InvalidInput, ValueError) as exc:
                self._problem(chunk, report, describe_error(exc), offset=start)
                continue
            if found is None:
                continue
            key, obj, output = found
            report.usage_lines += 1
            seen = replies.get(key)
            if seen is None:
                replies[key] = _Reply(obj, start, output, start, obj.get("timestamp"))
                continue
            repeats += 1
            seen.last_timestamp = obj.get("timestamp")
            if output > seen.output:
                seen.obj, seen.offset, seen.output = obj, start, output
        if repeats:
            report.skip("repeated lines of one reply", repeats)
        return replies, data.count(b"\n")

    def _check_shapes(self, chunk: Chunk, report: ReadReport) -> set[int]:
        """Report the lines that are not JSON objects; returns where they start."""
        broken: set[int] = set()
        offset = 0
        for index, line in enumerate(chunk.data.split(b"\n")):
            if not (line[:1] == b"{" and line[-1:] == b"}"):
                why = broken_json(line)
                if why is not None:
                    broken.add(offset)
                    self._problem(chunk, report, why, index=index)
            offset += len(line) + 1
        return broken

    def _problem(
        self,
        chunk: Chunk,
        report: ReadReport,
        why: str,
        *,
        index: int | None = None,
        offset: int = 0,
    ) -> None:
        """A problem with line ``index`` of the chunk (or the line starting at ``offset``),
        reported with its number in the file, counted only when there is a problem."""
        if index is None:
            index = chunk.data.count(b"\n", 0, offset)
        if chunk.start == 0:
            report.problem(chunk.path, 1 + index, why)
            return
        base = self._bases.get(chunk.location)
        if base is None:
            base = self._bases[chunk.location] = chunk.first_line_number()
        report.problem(chunk.path, base + index, why)

    def _root_for(self, path: Path) -> Path | None:
        for parent in path.parents:
            if parent in self._root_ids:
                return parent
        return None

    def _identities(self, user_id: str | None, root: Path | None) -> tuple[Identity, ...]:
        key = (user_id or "", root)
        ids = self._line_ids.get(key)
        if ids is None:
            line = (Identity(IdentityKind.ACCOUNT, user_id),) if user_id else ()
            config = self._root_ids.get(root, ()) if root is not None else ()
            ids = self._head + config + line + self._tail
            self._line_ids[key] = ids
        return ids

    def _record(self, key: str, obj: dict[str, Any], ctx: _FileContext) -> ImportedUsage:
        message: dict[str, Any] = obj["message"]
        usage: dict[str, Any] = message["usage"]
        model = message.get("model")
        if not isinstance(model, str) or not model.strip() or len(model) > 190:
            raise InvalidInput(f"message.model must be a model name, got {model!r}")
        if usage.get("speed") == "fast":
            model = f"{model}-fast"
        message_id = _text(message.get("id"))
        request_id = _text(obj.get("requestId"))
        session = _text(obj.get("sessionId")) or ctx.session
        return ImportedUsage(
            source=SOURCE,
            key=key,
            used_utc=parse_timestamp(obj.get("timestamp")),
            provider=PROVIDER,
            model=model,
            usage=_tokens(usage),
            identities=self._identities(_text(obj.get("userID")), ctx.root),
            session_id=session[:200],
            project=(_text(obj.get("cwd")) or ctx.project)[:500],
            hostname=self.hostname,
            message_id=message_id if message_id and len(message_id) <= 200 else None,
            upstream_request_id=request_id if request_id and len(request_id) <= 200 else None,
            reported_cost=_cost(obj.get("costUSD")),
        )


def _usage_line(line: bytes, report: ReadReport) -> tuple[str, dict[str, Any], int] | None:
    """(key, parsed line, output tokens) of a line with ``message.usage``; None for a line
    whose "usage" is elsewhere (e.g. inside a tool result) or a ``<synthetic>`` reply."""
    obj = orjson.loads(line)
    if type(obj) is not dict:
        raise InvalidInput("line is not a JSON object")
    message = obj.get("message")
    usage = message.get("usage") if type(message) is dict else None
    if type(usage) is not dict:
        return None
    assert type(message) is dict
    if message.get("model") == "<synthetic>":
        report.skip("<synthetic> replies")
        return None
    output = usage.get("output_tokens") or 0
    if type(output) is not int or output < 0:
        raise InvalidInput(f"usage.output_tokens must be a non-negative int, got {output!r}")
    message_id, request_id = message.get("id"), obj.get("requestId")
    if type(message_id) is str and type(request_id) is str and message_id and request_id:
        key = f"{message_id}:{request_id}"  # the usual case, as _key would make it
        if len(key) <= MAX_KEY_CHARS:
            return key, obj, output
    key = _key(_text(message_id), _text(request_id), obj.get("uuid"), line)
    return key, obj, output


def _count(value: Any) -> int:
    if type(value) is int and value >= 0:
        return value
    if value is None:
        return 0
    raise _NotPlain


class _NotPlain(Exception):
    """A usage value that is not a plain count: left to ``TokenUsage.from_anthropic``."""


def _tokens(usage: dict[str, Any]) -> TokenUsage:
    """``TokenUsage.from_anthropic`` for the common case of plain int counts, several times
    faster; anything else goes to ``from_anthropic`` itself (same result, same errors)."""
    try:
        written = usage.get("cache_creation_input_tokens")
        split = usage.get("cache_creation")
        w1h = w5m = 0
        if split is not None:
            if type(split) is not dict:
                raise _NotPlain
            w1h = _count(split.get("ephemeral_1h_input_tokens"))
            w5m = _count(split.get("ephemeral_5m_input_tokens"))
        if written is not None:
            total = _count(written)
            if w5m + w1h > total:
                raise _NotPlain
            w5m = total - w1h
        return TokenUsage(
            input_tokens=_count(usage.get("input_tokens")),
            output_tokens=_count(usage.get("output_tokens")),
            cache_read_tokens=_count(usage.get("cache_read_input_tokens")),
            cache_write_tokens=w5m,
            cache_write_1h_tokens=w1h,
        )
    except _NotPlain:
        return TokenUsage.from_anthropic(usage)


class _FileContext:
    """What a transcript's path says: its session (file name) and project (folder)."""

    __slots__ = ("root", "session", "project")

    def __init__(self, path: Path, root: Path | None) -> None:
        self.root = root
        self.session = path.stem
        parts = path.parts
        if "projects" in parts:
            i = len(parts) - 1 - parts[::-1].index("projects")
            self.project = parts[i + 1] if i + 2 < len(parts) else path.parent.name
        else:
            self.project = path.parent.name


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _key(message_id: str | None, request_id: str | None, uuid: Any, line: bytes) -> str:
    """ccusage's key: ``message.id:requestId``; else the message id, the line's uuid, or a
    hash of the line. Keys too long for the column are hashed."""
    if message_id and request_id:
        key = f"{message_id}:{request_id}"
    elif message_id:
        key = message_id
    elif isinstance(uuid, str) and uuid:
        key = f"uuid:{uuid}"
    else:
        key = "line:" + hashlib.sha256(line).hexdigest()[:40]
    if len(key) > MAX_KEY_CHARS:
        key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()[:48]
    return key


def _cost(value: Any) -> Money | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return Money.from_decimal(Decimal(repr(value)))
    return None
