"""Token usage in one normalised convention.

Every provider counts tokens a little differently. tokenwage converts each report, once, at
the edge, into a :class:`TokenUsage` whose fields never overlap:

``input_tokens``
    Uncached input only (Anthropic's convention). Cache reads and cache writes are **not**
    included; OpenAI's ``prompt_tokens`` / ``input_tokens`` include cached tokens, so the
    ``from_openai_*`` helpers subtract them.
``cache_read_tokens``
    Input tokens served from the prompt cache.
``cache_write_tokens``
    Input tokens written to the cache with the default (5-minute) lifetime.
``cache_write_1h_tokens``
    Input tokens written to the cache with the 1-hour lifetime.
``output_tokens``
    All generated tokens, **including** reasoning/thinking tokens (both OpenAI and Anthropic
    already count them in their output figure).
``reasoning_tokens``
    Informational: the part of ``output_tokens`` spent reasoning. Never priced on top of
    ``output_tokens``, so it may not exceed it.

So the whole prompt is ``input + cache_read + cache_write + cache_write_1h`` and
:attr:`TokenUsage.total_tokens` is that plus ``output_tokens``. All counts are plain ``int``
(never ``bool`` or ``float``) and never negative; a missing field in a provider report is 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from tokenwage.core.errors import InvalidInput

__all__ = ["TokenUsage"]


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Tokens used by one or more requests, in the convention of the module docstring."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    reasoning_tokens: int = 0

    def __post_init__(self) -> None:
        for name in _FIELDS:  # hot on the gateway and import paths: no fields() per call
            value = getattr(self, name)
            if type(value) is not int:  # bool is refused too: its type is bool, not int
                raise InvalidInput(
                    f"TokenUsage.{name} must be an int count of tokens, "
                    f"got {value!r} ({type(value).__name__})"
                )
            if value < 0:
                raise InvalidInput(f"TokenUsage.{name} must be 0 or more, got {value}")
        if self.reasoning_tokens > self.output_tokens:
            raise InvalidInput(
                f"TokenUsage.reasoning_tokens ({self.reasoning_tokens}) exceeds output_tokens "
                f"({self.output_tokens}); output_tokens must include reasoning tokens, so add "
                "them to output_tokens when a provider reports them separately"
            )

    def __add__(self, other: TokenUsage) -> TokenUsage:
        if not isinstance(other, TokenUsage):
            return NotImplemented
        return TokenUsage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            cache_write_1h_tokens=self.cache_write_1h_tokens + other.cache_write_1h_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
        )

    @property
    def prompt_tokens(self) -> int:
        """Every input-side token: uncached input, cache reads and both kinds of cache write."""
        return (
            self.input_tokens
            + self.cache_read_tokens
            + self.cache_write_tokens
            + self.cache_write_1h_tokens
        )

    @property
    def total_tokens(self) -> int:
        """Every token once: the prompt plus the output (reasoning is inside the output)."""
        return self.prompt_tokens + self.output_tokens

    def counts(self) -> dict[str, int]:
        """Every token count by field name (the usage-record columns and ledger meta keys)."""
        return {name: getattr(self, name) for name in _FIELDS}

    # -- provider reports ---------------------------------------------------------------
    @classmethod
    def from_openai_chat(cls, usage: Mapping[str, Any]) -> TokenUsage:
        """Normalise the ``usage`` object of an OpenAI Chat Completions response.

        ``prompt_tokens`` includes ``prompt_tokens_details.cached_tokens`` (subtracted here);
        ``completion_tokens`` includes ``completion_tokens_details.reasoning_tokens``.
        """
        return cls._from_openai(usage, "OpenAI chat usage", "prompt", "completion")

    @classmethod
    def from_openai_responses(cls, usage: Mapping[str, Any]) -> TokenUsage:
        """Normalise the ``usage`` object of an OpenAI Responses API response.

        ``input_tokens`` includes ``input_tokens_details.cached_tokens`` (subtracted here);
        ``output_tokens`` includes ``output_tokens_details.reasoning_tokens``.
        """
        return cls._from_openai(usage, "OpenAI Responses usage", "input", "output")

    @classmethod
    def _from_openai(
        cls, usage: Mapping[str, Any], what: str, prompt: str, completion: str
    ) -> TokenUsage:
        """Both OpenAI shapes: ``{prompt}_tokens`` with ``{prompt}_tokens_details``, and
        ``{completion}_tokens`` with ``{completion}_tokens_details``."""
        report = _Report(usage, what)
        total = report.count(f"{prompt}_tokens")
        cached = report.count(f"{prompt}_tokens_details", "cached_tokens")
        return cls(
            input_tokens=report.uncached(total, f"{prompt}_tokens", cached, "cached_tokens"),
            cache_read_tokens=cached,
            output_tokens=report.count(f"{completion}_tokens"),
            reasoning_tokens=report.count(f"{completion}_tokens_details", "reasoning_tokens"),
        )

    @classmethod
    def from_anthropic(cls, usage: Mapping[str, Any]) -> TokenUsage:
        """Normalise the ``usage`` object of an Anthropic Messages response.

        Anthropic already reports uncached ``input_tokens``. ``cache_creation_input_tokens`` is
        every cache write; when the ``cache_creation`` breakdown is present its
        ``ephemeral_1h_input_tokens`` become 1-hour writes and the rest of the total stays
        5-minute writes (so the total is never lost or double counted).
        """
        report = _Report(usage, "Anthropic usage")
        write_1h = report.count("cache_creation", "ephemeral_1h_input_tokens")
        write_5m = report.count("cache_creation", "ephemeral_5m_input_tokens")
        if report.present("cache_creation_input_tokens"):
            total = report.count("cache_creation_input_tokens")
            if write_5m + write_1h > total:
                raise InvalidInput(
                    f"Anthropic usage: cache_creation.ephemeral_5m_input_tokens ({write_5m}) + "
                    f"ephemeral_1h_input_tokens ({write_1h}) exceed cache_creation_input_tokens "
                    f"({total}); pass the usage object exactly as the API returned it"
                )
            write_5m = total - write_1h
        return cls(
            input_tokens=report.count("input_tokens"),
            output_tokens=report.count("output_tokens"),
            cache_read_tokens=report.count("cache_read_input_tokens"),
            cache_write_tokens=write_5m,
            cache_write_1h_tokens=write_1h,
        )


_FIELDS = tuple(f.name for f in fields(TokenUsage))


class _Report:
    """Reads non-negative int counts out of a provider's usage JSON, naming bad fields."""

    def __init__(self, usage: object, what: str) -> None:
        if not isinstance(usage, Mapping):
            raise InvalidInput(
                f"{what} must be a JSON object (dict), got {type(usage).__name__}; "
                "pass the response's `usage` field"
            )
        self.usage: Mapping[str, Any] = usage
        self.what = what

    def present(self, key: str) -> bool:
        return self.usage.get(key) is not None

    def count(self, *path: str) -> int:
        """The int at ``path``; 0 when any step is missing or null."""
        node: Any = self.usage
        for depth, key in enumerate(path):
            if not isinstance(node, Mapping):
                parent = ".".join(path[:depth])
                raise InvalidInput(
                    f"{self.what}: field {parent!r} must be an object, got {node!r} "
                    f"({type(node).__name__})"
                )
            node = node.get(key)
            if node is None:
                return 0
        if isinstance(node, bool) or not isinstance(node, int) or node < 0:
            raise InvalidInput(
                f"{self.what}: field {'.'.join(path)!r} must be a non-negative int, "
                f"got {node!r} ({type(node).__name__})"
            )
        return node

    def uncached(self, prompt: int, prompt_key: str, cached: int, cached_key: str) -> int:
        if cached > prompt:
            raise InvalidInput(
                f"{self.what}: {cached_key} ({cached}) exceeds {prompt_key} ({prompt}), but "
                f"{prompt_key} should include cached tokens; is this really this provider's usage?"
            )
        return prompt - cached
