"""Reading usage out of provider answers: whole JSON bodies, and SSE streams as they pass.

A :class:`StreamTap` is fed the upstream's bytes and returns what may go to the client now:
every complete event, byte for byte, except the *terminal* one (``data: [DONE]``,
``response.completed``/``incomplete``/``failed``, ``message_stop``, or an error event). From
the terminal event on, everything is held back until :meth:`StreamTap.finish`, so the gateway
can settle before the client gets the last byte. Only OpenAI chat streams are ever altered,
and only when the gateway asked for usage the client did not: then the usage-only chunk is
dropped and each chunk's ``"usage":null`` removed, so the client sees what it asked for.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from tokenwage.core.errors import InvalidInput
from tokenwage.core.usage import TokenUsage
from tokenwage.gateway.config import ProviderKind
from tokenwage.gateway.errors import Send
from tokenwage.gateway.estimate import output_tokens
from tokenwage.gateway.ticket import RequestFacts

log = logging.getLogger(__name__)

UsageParser = Callable[[Mapping[str, Any]], TokenUsage]


def parse_usage(parser: UsageParser, report: object) -> TokenUsage | None:
    """The normalised usage of a provider's ``usage`` object; None (logged) when malformed."""
    if not isinstance(report, Mapping):
        return None
    try:
        return parser(report)
    except InvalidInput as exc:
        log.warning("ignoring a malformed usage report from the provider: %s", exc)
        return None


# -- whole JSON bodies -------------------------------------------------------------------

_USAGE_KEY = b'"usage"'
_USAGE_VALUE = re.compile(rb"\s*:\s*\{")
_COUNT_KEYS = ("input_tokens", "prompt_tokens", "output_tokens", "completion_tokens")


def json_usage(body: bytes) -> Mapping[str, Any] | None:
    """The top-level ``usage`` object of a JSON response body, or None.

    Providers put ``usage`` last, so the fast path parses only the last ``"usage": {...}``
    (an unescaped ``"usage"`` cannot occur inside a JSON string) instead of what may be
    megabytes of embeddings; anything unexpected falls back to parsing the whole body.
    """
    at = body.rfind(_USAGE_KEY)
    if at < 0:
        return None
    match = _USAGE_VALUE.match(body, at + len(_USAGE_KEY))
    if match is not None:
        start = match.end() - 1
        end = _object_end(body, start)
        found = _loads(body[start:end]) if end else None
        if found is not None and any(key in found for key in _COUNT_KEYS):
            return found
    whole = _loads(body)
    usage = whole.get("usage") if whole is not None else None
    return usage if isinstance(usage, dict) else None


def _object_end(body: bytes, start: int) -> int:
    """Where the object opened at ``start`` closes, counting braces (usage reports hold no
    braces inside strings; if one did, the parse or the key check fails and the caller falls
    back to a full parse). 0 when unbalanced."""
    depth = 0
    at = start
    while True:
        close = body.find(b"}", at)
        if close < 0:
            return 0
        opened = body.count(b"{", at, close)
        depth += opened - 1
        at = close + 1
        if depth == 0:
            return at


def body_usage(
    api: MeteredApi, data: bytes, status: int, facts: RequestFacts
) -> tuple[TokenUsage | None, bool]:
    """(usage, estimated) of a whole response: the provider's report; an estimate for a
    success without one (prompt estimate, and the body's size as output up to the limit);
    None for an error without one (recorded, not charged)."""
    usage = parse_usage(api.usage_from, json_usage(data))
    if usage is not None or status >= 300:
        return usage, False
    output = output_tokens(len(data))
    if facts.max_output_tokens is not None:
        output = min(output, facts.max_output_tokens)
    return TokenUsage(input_tokens=facts.prompt_tokens_estimate, output_tokens=output), True


def _loads(data: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


# -- streams -----------------------------------------------------------------------------


def _split(block: bytes) -> tuple[bytes, bytes]:
    """(event name, data) of one SSE event block (multiple data lines joined by newlines)."""
    name = b""
    data = b""
    for line in block.splitlines():
        if line.startswith(b"data:"):
            value = line[6:] if line[5:6] == b" " else line[5:]
            data = data + b"\n" + value if data else value
        elif line.startswith(b"event:"):
            name = line[6:].strip()
    return name, data


class StreamTap:
    """Splits an SSE byte stream into events and decides, per event, to pass, drop or hold it."""

    __slots__ = ("_buf", "_sep", "_held", "holding", "usage", "_chars")

    def __init__(self) -> None:
        self._buf = b""
        self._sep = b""  # b"\n\n" or b"\r\n\r\n", from the first line ending seen
        self._held: list[bytes] = []
        self.holding = False
        self.usage: TokenUsage | None = None
        self._chars = 0

    @property
    def output_chars(self) -> int:
        """Characters of generated text seen so far (for an estimate)."""
        self._count()
        return self._chars

    def _count(self) -> None:
        """Count the text of what was passed without counting it (a tap that defers)."""

    def feed(self, chunk: bytes) -> bytes:
        """The bytes of ``chunk`` (with what was buffered) that may go to the client now."""
        if self.holding:
            self._held.append(chunk)
            return b""
        buf = self._buf + chunk if self._buf else chunk
        if not self._sep:
            newline = buf.find(b"\n")
            if newline < 0:
                self._buf = buf
                return b""
            self._sep = b"\r\n\r\n" if newline and buf[newline - 1] == 13 else b"\n\n"
        sep, width = self._sep, len(self._sep)
        out: list[bytes] = []
        start = 0
        while (end := buf.find(sep, start)) >= 0:
            block = buf[start : end + width]
            passed = self._event(block)
            if passed is None:
                self.holding = True
                self._held.append(buf[start:])
                self._buf = b""
                return b"".join(out)
            if passed:
                out.append(passed)
            start = end + width
        self._buf = buf[start:] if start else buf
        return out[0] if len(out) == 1 else b"".join(out)

    async def pump(self, content: aiohttp.StreamReader, send: Send) -> None:
        """Pass the upstream's events to the client as they come, until the upstream ends.

        Raises what aiohttp raises when the upstream breaks off. A client that went away makes
        ``send`` a no-op, so the upstream is still read to its usage report.
        """
        while chunk := await content.readany():
            passed = self.feed(chunk)
            if passed:
                await send({"type": "http.response.body", "body": passed, "more_body": True})

    def finish(self) -> bytes:
        """Everything held back: the terminal event and what followed, or an unfinished tail."""
        if not self.holding and self._buf:
            self._event(self._buf)  # an event cut short, or missing its blank line: tap it
        tail = b"".join(self._held) + self._buf
        self._held.clear()
        self._buf = b""
        return tail

    def estimated_usage(self, prompt_tokens_estimate: int) -> TokenUsage:
        """Usage to settle with when the stream ended without its usage report."""
        return TokenUsage(
            input_tokens=prompt_tokens_estimate, output_tokens=output_tokens(self.output_chars)
        )

    def _event(self, block: bytes) -> bytes | None:
        """The bytes to pass for one event (b"" drops it), or None for a terminal event."""
        raise NotImplementedError


_DELTA_TEXT_KEYS = ("content", "reasoning_content", "reasoning", "refusal")
UNCOUNTED_BYTES = 1 << 20
"""A chat stream's content chunks are counted once this many bytes of them are kept."""
_USAGE_NULL = re.compile(rb',\s*"usage"\s*:\s*null|"usage"\s*:\s*null\s*,')


class ChatTap(StreamTap):
    """``/v1/chat/completions``: usage in the chunk with empty ``choices``; ends ``[DONE]``.

    A content chunk (no usage report, no error) is passed without parsing it: its text is
    only counted, from the kept bytes, if the stream ends without a usage report and the
    gateway has to estimate (:attr:`output_chars`). An unescaped ``"usage"`` or
    ``"error"`` cannot occur inside a JSON string, so looking for them is exact.
    """

    __slots__ = ("_hide_usage", "_uncounted", "_uncounted_bytes")

    def __init__(self, hide_usage: bool) -> None:
        super().__init__()
        self._hide_usage = hide_usage
        self._uncounted: list[bytes] = []  # content chunks whose text is not counted yet
        self._uncounted_bytes = 0

    def _count(self) -> None:
        for data in self._uncounted:
            chunk = _loads(data)
            choices = chunk.get("choices") if chunk is not None else None
            if isinstance(choices, list):
                self._chars += _chat_delta_chars(choices)
        self._uncounted.clear()
        self._uncounted_bytes = 0

    def _event(self, block: bytes) -> bytes | None:
        _, data = _split(block)
        if data == b"[DONE]":
            return None
        if (
            data[:1] == b"{"
            and b'"error"' not in data
            and (b'"usage"' not in data or _USAGE_NULL.search(data))
        ):  # a content chunk: no usage report in it
            self._uncounted.append(data)
            self._uncounted_bytes += len(data)
            if self._uncounted_bytes > UNCOUNTED_BYTES:
                self._count()
            if self._hide_usage and b'"usage"' in data:
                return _USAGE_NULL.sub(b"", block, count=1)
            return block
        chunk = _loads(data) if data[:1] == b"{" else None
        if chunk is None:
            return block
        choices = chunk.get("choices")
        if "error" in chunk and not choices:
            return None
        if isinstance(choices, list):
            self._chars += _chat_delta_chars(choices)
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = parse_usage(TokenUsage.from_openai_chat, usage) or self.usage
            if self._hide_usage and not choices:
                return b""
        elif self._hide_usage and "usage" in chunk:
            return _USAGE_NULL.sub(b"", block, count=1)
        return block


def _chat_delta_chars(choices: list[Any]) -> int:
    chars = 0
    for choice in choices:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if not isinstance(delta, dict):
            continue
        for key in _DELTA_TEXT_KEYS:
            text = delta.get(key)
            if isinstance(text, str):
                chars += len(text)
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            function = call.get("function") if isinstance(call, dict) else None
            arguments = function.get("arguments") if isinstance(function, dict) else None
            if isinstance(arguments, str):
                chars += len(arguments)
    return chars


_RESPONSE_DONE = frozenset({b"response.completed", b"response.incomplete", b"response.failed"})


class ResponsesTap(StreamTap):
    """``/v1/responses``: usage in the ``response`` of the completed/incomplete/failed event."""

    __slots__ = ()

    def __init__(self, hide_usage: bool = False) -> None:
        super().__init__()

    def _event(self, block: bytes) -> bytes | None:
        name, data = _split(block)
        if name and not (name in _RESPONSE_DONE or name == b"error" or name.endswith(b".delta")):
            return block
        event = _loads(data)
        if event is None:
            return block
        kind = name or str(event.get("type", "")).encode()
        if kind.endswith(b".delta"):
            delta = event.get("delta")
            if isinstance(delta, str):
                self._chars += len(delta)
        elif kind in _RESPONSE_DONE:
            response = event.get("response")
            if isinstance(response, dict):
                usage = parse_usage(TokenUsage.from_openai_responses, response.get("usage"))
                self.usage = usage or self.usage
            return None
        elif kind == b"error":
            return None
        return block


_ANTHROPIC_PASS = frozenset({b"ping", b"content_block_start", b"content_block_stop"})
_ANTHROPIC_DELTA_KEYS = ("text", "partial_json", "thinking")


class MessagesTap(StreamTap):
    """``/v1/messages``: input usage in ``message_start``, final counts in ``message_delta``."""

    __slots__ = ("_start",)

    def __init__(self, hide_usage: bool = False) -> None:
        super().__init__()
        self._start: dict[str, Any] = {}

    def _event(self, block: bytes) -> bytes | None:
        name, data = _split(block)
        if name in _ANTHROPIC_PASS:
            return block
        event = _loads(data)
        if event is None:
            return block
        kind = name or str(event.get("type", "")).encode()
        if kind == b"content_block_delta":
            delta = event.get("delta")
            if isinstance(delta, dict):
                for key in _ANTHROPIC_DELTA_KEYS:
                    text = delta.get(key)
                    if isinstance(text, str):
                        self._chars += len(text)
        elif kind == b"message_start":
            message = event.get("message")
            usage = message.get("usage") if isinstance(message, dict) else None
            if isinstance(usage, dict):
                self._start = usage
        elif kind == b"message_delta":
            usage = event.get("usage")
            if isinstance(usage, dict):
                final = {**self._start, **{k: v for k, v in usage.items() if v is not None}}
                self.usage = parse_usage(TokenUsage.from_anthropic, final) or self.usage
        elif kind in (b"message_stop", b"error"):
            return None
        return block

    def estimated_usage(self, prompt_tokens_estimate: int) -> TokenUsage:
        """The input side from ``message_start`` when it came; the output estimated."""
        started = parse_usage(TokenUsage.from_anthropic, self._start) if self._start else None
        if started is None:
            return super().estimated_usage(prompt_tokens_estimate)
        output = max(started.output_tokens, output_tokens(self.output_chars))
        return dataclasses.replace(started, output_tokens=output)


@dataclass(frozen=True, slots=True)
class MeteredApi:
    """What the gateway must know to meter one inbound endpoint."""

    endpoint: str  # RequestFacts.endpoint, e.g. "openai.chat"
    kind: ProviderKind  # the dialect, of errors and of the providers it routes to
    path: str
    limit_fields: tuple[str, ...] | None  # output limits in the body; None: no output at all
    usage_from: UsageParser
    tap: Callable[[bool], StreamTap] | None  # None: never streams
    asks_stream_usage: bool = False  # ask upstream for stream usage the client did not ask for
