"""Writers of Claude Code transcripts, Codex rollouts and usage CSVs, shaped like the real
ones, with known totals (not a test module)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SONNET = "claude-sonnet-4-5-20250929"
HAIKU = "claude-haiku-4-5-20251001"


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def claude_line(
    mid: str | None,
    rid: str | None,
    ts: str,
    *,
    model: str = SONNET,
    input: int = 10,
    output: int = 100,
    cache_5m: int = 0,
    cache_1h: int = 0,
    cache_read: int = 0,
    session: str = "s1",
    cwd: str = "/home/ada/proj",
    sidechain: bool = False,
    uuid: str | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """One assistant line of a Claude Code transcript (compact JSON, as Claude Code writes)."""
    usage: dict[str, Any] = {
        "input_tokens": input,
        "cache_creation_input_tokens": cache_5m + cache_1h,
        "cache_read_input_tokens": cache_read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": cache_5m,
            "ephemeral_1h_input_tokens": cache_1h,
        },
        "output_tokens": output,
        "service_tier": "standard",
    }
    message: dict[str, Any] = {
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "Done."}],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }
    if mid is not None:
        message["id"] = mid
    line: dict[str, Any] = {
        "parentUuid": None,
        "isSidechain": sidechain,
        "userType": "external",
        "cwd": cwd,
        "sessionId": session,
        "version": "2.0.14",
        "gitBranch": "main",
        "message": message,
        "type": "assistant",
        "uuid": uuid or f"u-{mid}-{ts}",
        "timestamp": ts,
    }
    if rid is not None:
        line["requestId"] = rid
    line.update(extra or {})
    return dumps(line)


def user_line(ts: str, *, session: str = "s1", tool_usage: bool = False) -> str:
    """A user line; ``tool_usage`` adds a Task tool result that itself mentions "usage"."""
    line: dict[str, Any] = {
        "type": "user",
        "sessionId": session,
        "message": {"role": "user", "content": [{"type": "text", "text": "please fix it"}]},
        "uuid": f"user-{ts}",
        "timestamp": ts,
    }
    if tool_usage:
        line["toolUseResult"] = {"totalTokens": 5000, "usage": {"input_tokens": 99}}
    return dumps(line)


def write(path: Path, lines: Iterable[str], *, mode: str = "w") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open(mode) as f:
        for line in lines:
            f.write(line + "\n")
    return path


def codex_usage(
    inp: int, cached: int, out: int, reasoning: int = 0, total: int | None = None
) -> dict[str, int]:
    return {
        "input_tokens": inp,
        "cached_input_tokens": cached,
        "output_tokens": out,
        "reasoning_output_tokens": reasoning,
        "total_tokens": inp + out if total is None else total,
    }


def codex_meta(session: str, ts: str, cwd: str = "/home/ada/proj") -> str:
    payload = {"id": session, "timestamp": ts, "cwd": cwd, "originator": "codex_cli_rs"}
    return dumps({"timestamp": ts, "type": "session_meta", "payload": payload})


def codex_turn(ts: str, model: str = "gpt-5-codex") -> str:
    payload = {"cwd": "/home/ada/proj", "approval_policy": "on-request", "model": model}
    return dumps({"timestamp": ts, "type": "turn_context", "payload": payload})


def codex_count(
    ts: str, last: dict[str, int] | None, total: dict[str, int] | None, **info: Any
) -> str:
    body: dict[str, Any] | None = None
    if last is not None or total is not None or info:
        body = {"total_token_usage": total, "last_token_usage": last, **info}
        body = {k: v for k, v in body.items() if v is not None}
    payload = {"type": "token_count", "info": body, "rate_limits": {"primary": None}}
    return dumps({"timestamp": ts, "type": "event_msg", "payload": payload})


def codex_message(ts: str, text: str = "ok") -> str:
    payload = {"type": "message", "role": "assistant", "content": [{"text": text}]}
    return dumps({"timestamp": ts, "type": "response_item", "payload": payload})
