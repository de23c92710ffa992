"""Deterministic token accounting and answer text, the same for every provider shape.

A request is boiled down to a :class:`Prompt` (characters, message and tool counts, the system
text and the user's last words); :func:`plan_usage` turns it into a :class:`Usage`; the answer
text is made of three-letter words so that it holds exactly as many tokens as it claims (every
word plus its space is four characters, and a token is four characters here).
"""

from __future__ import annotations

import functools
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4
TOOL_OVERHEAD_TOKENS = 8
REPLY_PRIMING_TOKENS = 3
DEFAULT_OUTPUT_MIN_TOKENS = 16
DEFAULT_OUTPUT_SPAN_TOKENS = 48
MAX_OUTPUT_TOKENS = 32_768
"""Ceiling on any answer, so ``tokens:999999999`` cannot make the mock write gigabytes."""

_STRUCTURAL_KEYS = frozenset({"type", "role"})
_FORCED_OUTPUT = re.compile(r"\btokens:(\d+)\b")
_CACHE_MARK = re.compile(r"\[mock:cache(-write)?(?::(\d+))?\]")
_WORDS = (
    "the fox ran far and saw owl sky sun dew elk fig gem hop ink jam "
    "key log map net oak pen rug sea tea urn van wax yak zip arc bay "
    "cab dot ear fin gap hat ice jet kit lab mud nod orb pod ray sap "
    "tin use vat web axe bee cog den egg fur gum hut ivy jog kin lid"
).split()
_WORD_STRIDE = 13  # coprime with len(_WORDS), so every word comes round


def count_chars(value: Any) -> int:
    """Characters of every string in a JSON value, leaving out ``type`` and ``role`` tags."""
    if isinstance(value, str):
        return len(value)
    total = 0
    if isinstance(value, list):
        for item in value:
            total += len(item) if isinstance(item, str) else count_chars(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in _STRUCTURAL_KEYS:
                total += len(item) if isinstance(item, str) else count_chars(item)
    return total


def text_of(content: Any) -> str:
    """The plain text of a message's content: a string, or the ``text`` of its blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            block["text"]
            for block in content
            if isinstance(block, dict) and isinstance(block.get("text"), str)
        ]
        return "\n".join(parts)
    return ""


USER = "user"
"""A turn the user typed (not one that only carries tool results)."""
SYSTEM = "system"
"""System or developer text, wherever it sits in the conversation; the user conventions skip it."""
OTHER = "other"
"""An assistant turn, a tool call or a tool result."""


def user_request(turns: Sequence[Any], classify: Callable[[Any], str]) -> tuple[Any, bool]:
    """(the last turn the user typed or None, whether only system text came after it).

    ``classify`` says what each turn is (:data:`USER`, :data:`SYSTEM` or :data:`OTHER`). The
    ``tokens:N`` convention reads the user turn found here even when tool results came after it,
    while ``use tool`` needs it to be the latest turn: a tool result always gets a text answer.
    """
    latest = True
    for turn in reversed(turns):
        kind = classify(turn)
        if kind == USER:
            return turn, latest
        if kind != SYSTEM:
            latest = False
    return None, False


@dataclass(frozen=True, slots=True)
class Prompt:
    """What the accounting needs to know about a request, whatever its provider shape.

    ``last_user_text`` is the text of the user's last typed turn (see :func:`user_request`) and
    ``user_spoke_last`` whether nothing but system text followed it.
    """

    chars: int
    messages: int
    tools: int = 0
    system_text: str = ""
    last_user_text: str = ""
    user_spoke_last: bool = True

    @property
    def tokens(self) -> int:
        """All input tokens: ``ceil(chars / 4)`` plus 4 a message, 8 a tool and 3 for the reply."""
        return (
            -(-self.chars // CHARS_PER_TOKEN)
            + MESSAGE_OVERHEAD_TOKENS * self.messages
            + TOOL_OVERHEAD_TOKENS * self.tools
            + REPLY_PRIMING_TOKENS
        )

    def wants_tool(self) -> bool:
        return self.tools > 0 and self.user_spoke_last and "use tool" in self.last_user_text.lower()


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one answer, cached and reasoning tokens included in their totals."""

    prompt_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int
    truncated: bool
    answer_salt: int

    @property
    def uncached_input_tokens(self) -> int:
        """Anthropic's ``input_tokens``: the prompt less what was read from or written to cache."""
        return self.prompt_tokens - self.cache_read_tokens - self.cache_write_tokens

    @property
    def visible_output_tokens(self) -> int:
        return self.output_tokens - self.reasoning_tokens

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.output_tokens


def cache_tokens(system_text: str, prompt_tokens: int) -> tuple[int, int]:
    """(read, written) cache tokens asked for by ``[mock:cache]``, ``[mock:cache:N]``,
    ``[mock:cache-write]`` or ``[mock:cache-write:N]`` (no N: half the prompt).

    Only these exact markers count (lower case, in brackets): real agents' prompts talk about
    caches, and must not change the usage by accident.
    """
    read = written = 0
    if "[mock:cache" not in system_text:
        return read, written
    for match in _CACHE_MARK.finditer(system_text):
        wanted = int(match.group(2)) if match.group(2) else prompt_tokens // 2
        if match.group(1):
            written = wanted
        else:
            read = wanted
    read = min(read, prompt_tokens)
    written = min(written, prompt_tokens - read)
    return read, written


def plan_usage(
    prompt: Prompt,
    *,
    max_output_tokens: int | None,
    reasoning: bool = False,
    wanted_output_tokens: int | None = None,
) -> Usage:
    """Decide every count of one answer; the same prompt always gets the same usage.

    The answer wants ``wanted_output_tokens`` if given, else N from ``tokens:N`` in the last user
    text, else ``16 + (crc32(last user text) + prompt tokens) % 48``; it is then capped by the
    request's limit (``truncated`` says so) and by :data:`MAX_OUTPUT_TOKENS`. A reasoning model
    spends about a quarter of its output tokens on hidden reasoning.
    """
    prompt_tokens = prompt.tokens
    salt = zlib.crc32(prompt.last_user_text.encode()) + prompt_tokens
    wanted = wanted_output_tokens
    if wanted is None:
        forced = _FORCED_OUTPUT.search(prompt.last_user_text)
        if forced is not None:
            wanted = int(forced.group(1))
        else:
            wanted = DEFAULT_OUTPUT_MIN_TOKENS + salt % DEFAULT_OUTPUT_SPAN_TOKENS
    wanted = max(1, min(wanted, MAX_OUTPUT_TOKENS))
    output = wanted if max_output_tokens is None else min(wanted, max_output_tokens)
    read, written = cache_tokens(prompt.system_text, prompt_tokens)
    return Usage(
        prompt_tokens=prompt_tokens,
        cache_read_tokens=read,
        cache_write_tokens=written,
        output_tokens=output,
        reasoning_tokens=(output + 2) // 4 if reasoning else 0,
        truncated=output < wanted,
        answer_salt=salt,
    )


@functools.lru_cache(maxsize=2048)
def _words(count: int, offset: int) -> tuple[str, ...]:
    size = len(_WORDS)
    return tuple(_WORDS[(offset + i * _WORD_STRIDE) % size] for i in range(count))


@functools.lru_cache(maxsize=2048)
def answer_text(tokens: int, salt: int) -> str:
    """``tokens`` words; ``ceil(len(text) / 4) == tokens`` for any tokens >= 1."""
    return " ".join(_words(tokens, salt % len(_WORDS)))


@functools.lru_cache(maxsize=2048)
def answer_chunks(tokens: int, salt: int, pieces: int) -> tuple[str, ...]:
    """:func:`answer_text` cut into at most ``pieces`` non-empty chunks that join back to it."""
    words = _words(tokens, salt % len(_WORDS))
    count = max(1, min(pieces, len(words)))
    chunks = []
    for index in range(count):
        part = " ".join(words[index * len(words) // count : (index + 1) * len(words) // count])
        chunks.append(part if index == 0 else " " + part)
    return tuple(chunks)


def split_evenly(text: str, pieces: int) -> list[str]:
    """``text`` cut into at most ``pieces`` non-empty parts of about the same length."""
    count = max(1, min(pieces, len(text)))
    cuts = [index * len(text) // count for index in range(count + 1)]
    return [text[cuts[index] : cuts[index + 1]] for index in range(count)]
