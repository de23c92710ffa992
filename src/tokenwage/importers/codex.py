"""Codex CLI session logs: ``${CODEX_HOME:-~/.codex}/sessions/**/rollout-*.jsonl``
(and ``archived_sessions``, where ``codex`` moves old ones).

Each line is ``{"timestamp", "type", "payload"}``. What matters:

* ``session_meta`` (the first line): the session ``id`` and ``cwd``.
* ``turn_context``: the ``model`` (and ``cwd``) from this turn on.
* ``event_msg`` with ``payload.type == "token_count"``: ``info.last_token_usage`` is the
  usage of the model call that just finished, ``info.total_token_usage`` the session's
  running total. Each call is booked from ``last_token_usage``, never from the total. An
  event whose ``total_token_usage`` equals the previous one did not advance (Codex sends
  the same counts again with rate-limit updates, and on resume): it is skipped. Without
  ``last_token_usage``, the difference of two totals is used.

Codex's token fields (``codex-rs/protocol``, ``TokenUsage``) copy the OpenAI Responses API:
``input_tokens`` **includes** ``cached_input_tokens`` (Codex's own ``non_cached_input()``
subtracts them), and ``output_tokens`` **includes** ``reasoning_output_tokens``
(``output_tokens_details.reasoning_tokens``; ``total_tokens`` is input + output). So, in our
convention: input = ``input_tokens - cached_input_tokens``, cache reads =
``cached_input_tokens``, output = ``output_tokens``, reasoning = ``reasoning_output_tokens``
(informational, never priced again).

Keys: ``<session id>:<running total_tokens>``, so a replayed event (a resumed session, a file
moved to ``archived_sessions``) is booked once. Sessions from early Codex builds name no model
anywhere; like ccusage they are booked as ``gpt-5`` and counted in the run's report.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from tokenwage.core.errors import InvalidInput
from tokenwage.core.imported import Identity, IdentityKind, ImportedUsage
from tokenwage.core.usage import TokenUsage
from tokenwage.importers import LogSource, describe_error, parse_timestamp
from tokenwage.importers.files import (
    Chunk,
    ReadReport,
    broken_json,
    discover,
    first_line,
    last_line_containing,
    split_lines,
)

SOURCE = "codex"
PROVIDER = "openai"
FALLBACK_MODEL = "gpt-5"
_COUNTS = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens")
_WANTED = (b'"token_count"', b'"turn_context"', b'"session_meta"')


def default_roots(env: Mapping[str, str], home: Path) -> list[Path]:
    """``$CODEX_HOME`` (default ``~/.codex``) ``sessions`` and ``archived_sessions``."""
    codex_home = Path(env["CODEX_HOME"]).expanduser() if env.get("CODEX_HOME") else home / ".codex"
    return [p for p in (codex_home / "sessions", codex_home / "archived_sessions") if p.is_dir()]


class _State:
    """What a rollout said before the line being read."""

    __slots__ = ("session", "cwd", "model", "total")

    def __init__(self, path: Path) -> None:
        stem = path.stem
        self.session = stem[-36:] if len(stem) > 36 else stem  # rollout-<time>-<uuid>
        self.cwd: str | None = None
        self.model: str | None = None
        self.total: dict[str, int] | None = None

    def read(self, obj: dict[str, Any]) -> None:
        """Take the session, cwd and model from a ``session_meta`` or ``turn_context``."""
        payload = obj.get("payload")
        if not isinstance(payload, dict):
            return
        if obj.get("type") == "session_meta" and isinstance(payload.get("id"), str):
            self.session = payload["id"]
        if isinstance(payload.get("cwd"), str):
            self.cwd = payload["cwd"]
        if isinstance(payload.get("model"), str) and payload["model"].strip():
            self.model = payload["model"].strip()


class CodexLogs(LogSource):
    """New usage in Codex rollouts under ``paths`` (files or folders)."""

    name = SOURCE

    def __init__(
        self,
        paths: Sequence[Path],
        *,
        hostname: str | None = None,
        person_email: str | None = None,
    ) -> None:
        super().__init__(list(paths))
        self.hostname = hostname
        ids = [Identity(IdentityKind.EMAIL, person_email)] if person_email else []
        if hostname:
            ids.append(Identity(IdentityKind.HOSTNAME, hostname))
        self.identities = tuple(ids)

    def discover(self, paths: list[Path]) -> list[Path]:
        return discover(paths, "rollout-*.jsonl")

    def parse(self, chunk: Chunk, report: ReadReport) -> tuple[list[ImportedUsage], int]:
        state = self._state_before(chunk)
        records: list[ImportedUsage] = []
        base_line: int | None = None
        for index, _offset, line in split_lines(chunk.data):
            if not line:
                continue
            report.lines_read += 1
            if not any(w in line for w in _WANTED):
                why = broken_json(line)
                if why is not None:
                    base_line = base_line or chunk.first_line_number()
                    report.problem(chunk.path, base_line + index, why)
                continue
            try:
                found = self._line(line, state, report)
            except (InvalidInput, ValueError) as exc:
                base_line = base_line or chunk.first_line_number()
                report.problem(chunk.path, base_line + index, describe_error(exc))
                continue
            if found is not None:
                report.usage_lines += 1
                records.append(found)
        return records, len(chunk.data)

    def _state_before(self, chunk: Chunk) -> _State:
        """The session, model and running total in force where ``chunk`` starts."""
        state = _State(chunk.path)
        if chunk.start == 0:
            return state
        for line in (
            first_line(chunk.path),
            last_line_containing(chunk.path, chunk.start, b'"turn_context"'),
        ):
            obj = _loads(line)
            if obj is not None:
                state.read(obj)
        last = _loads(last_line_containing(chunk.path, chunk.start, b'"total_token_usage"'))
        info = _info(last) if last is not None else None
        if info is not None:
            state.total = _counts(info.get("total_token_usage"))
        return state

    def _line(self, line: bytes, state: _State, report: ReadReport) -> ImportedUsage | None:
        obj = orjson.loads(line)
        if not isinstance(obj, dict):
            raise InvalidInput("line is not a JSON object")
        kind = obj.get("type")
        if kind in ("session_meta", "turn_context"):
            state.read(obj)
            return None
        info = _info(obj)
        if info is None:
            return None  # not a token count, or one with rate limits only
        total = _counts(info.get("total_token_usage"))
        if total is not None and total == state.total:
            report.skip("token counts that did not advance")
            return None
        last = _counts(info.get("last_token_usage"))
        previous, state.total = state.total, total or state.total
        if last is None and total is not None:
            last = {k: max(total[k] - (previous or {}).get(k, 0), 0) for k in total}
        if last is None or not any(last[k] for k in _COUNTS):
            return None
        used_utc = parse_timestamp(obj.get("timestamp"))
        payload = obj["payload"]
        model = _model(info) or _model(payload) or state.model
        if model is None:
            model = state.model = FALLBACK_MODEL
            report.skip(f"sessions without a model, booked as {FALLBACK_MODEL}")
        key_total = total["total_tokens"] if total is not None else None
        key = (
            f"{state.session}:{key_total}"
            if key_total
            else f"{state.session}:{hashlib.sha256(line).hexdigest()[:32]}"
        )
        return ImportedUsage(
            source=SOURCE,
            key=key[:94],
            used_utc=used_utc,
            provider=PROVIDER,
            model=model,
            usage=_usage(last),
            identities=self.identities,
            session_id=state.session[:200],
            project=state.cwd[:500] if state.cwd else None,
            hostname=self.hostname,
        )


def _usage(raw: dict[str, int]) -> TokenUsage:
    """Codex counts (input includes cached, output includes reasoning) in our convention."""
    cached = min(raw["cached_input_tokens"], raw["input_tokens"])
    return TokenUsage(
        input_tokens=raw["input_tokens"] - cached,
        cache_read_tokens=cached,
        output_tokens=raw["output_tokens"],
        reasoning_tokens=min(raw["reasoning_output_tokens"], raw["output_tokens"]),
    )


def _info(obj: dict[str, Any]) -> dict[str, Any] | None:
    payload = obj.get("payload")
    if obj.get("type") != "event_msg" or not isinstance(payload, dict):
        return None
    if payload.get("type") != "token_count" or not isinstance(payload.get("info"), dict):
        return None
    info: dict[str, Any] = payload["info"]
    return info


def _counts(value: Any) -> dict[str, int] | None:
    """A Codex usage object as non-negative ints (missing fields 0); None when absent."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInput(f"token usage must be an object, got {value!r}")
    out: dict[str, int] = {}
    for name in (*_COUNTS, "total_tokens"):
        v = value.get(name, 0)
        if v is None:
            v = 0
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise InvalidInput(f"{name} must be a non-negative int, got {v!r}")
        out[name] = v
    if not out["total_tokens"]:
        out["total_tokens"] = out["input_tokens"] + out["output_tokens"]
    return out


def _model(obj: dict[str, Any]) -> str | None:
    for value in (obj.get("model"), obj.get("model_name")):
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _loads(line: bytes | None) -> dict[str, Any] | None:
    if not line:
        return None
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None
