"""The one settings object of the simulated provider."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class MockConfig:
    """How the simulated provider behaves; every field has a harmless default.

    ``latency_ms`` is slept before the first byte of every response, ``chunk_delay_ms`` between
    two content chunks of a streamed answer, ``stream_chunks`` is how many content chunks a
    streamed answer is cut into, ``error_rate`` the fraction of requests answered with a
    provider-shaped 5xx/429 (drawn from a RNG seeded with ``seed``), and ``expected_api_key``,
    when set, is the only key accepted (any non-empty key is accepted otherwise).
    """

    latency_ms: float = 0.0
    chunk_delay_ms: float = 0.0
    stream_chunks: int = 5
    error_rate: float = 0.0
    seed: int = 0
    expected_api_key: str | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.latency_ms < 0:
            raise ValueError(f"latency_ms must be >= 0, got {self.latency_ms=!r}")
        if self.chunk_delay_ms < 0:
            raise ValueError(f"chunk_delay_ms must be >= 0, got {self.chunk_delay_ms=!r}")
        if self.stream_chunks < 1:
            raise ValueError(f"stream_chunks must be >= 1, got {self.stream_chunks=!r}")
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError(f"error_rate must be between 0 and 1, got {self.error_rate=!r}")
        if self.expected_api_key == "":
            raise ValueError("expected_api_key must be None (accept any key) or a non-empty key")

    def to_json(self) -> bytes:
        """Serialise for handing to worker processes (secrets included: never log this)."""
        return orjson.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, raw: bytes | str) -> MockConfig:
        data: Any = orjson.loads(raw)
        if not isinstance(data, dict):
            raise ValueError(f"a MockConfig must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown MockConfig keys {unknown!r}; expected some of {sorted(known)}"
            )
        return cls(**data)
