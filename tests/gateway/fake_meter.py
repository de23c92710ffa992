"""A fake :class:`~tokenwage.gateway.ticket.Meter` for the HTTP layer's tests.

It keeps keys in a dict, records every call (with the monotonic time it finished), can be
told to refuse with any domain error or to downgrade a model, and can make ``settle`` slow
(to show the client's last byte waits for it). Its coroutines run on the gateway's thread;
tests read what it recorded from theirs, so waiting helpers poll.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tokenwage.core.errors import ModelNotAllowed, TokenwageError, Unauthenticated
from tokenwage.core.imported import ImportedUsage
from tokenwage.core.keys import KeyInfo
from tokenwage.core.money import Money
from tokenwage.core.usage import TokenUsage
from tokenwage.gateway.ticket import RequestFacts, Ticket

GOOD_KEY = "twk_0000aaaa_" + "a" * 43
NARROW_KEY = "twk_0000bbbb_" + "b" * 43  # may use gpt-4o-mini and claude-haiku-* only
HOLD_NANOUSD = 5_000_000
NANOUSD_PER_TOKEN = 1_000  # what the fake charges: every token alike


def key_info(key_id: int, prefix: str, allowed: tuple[str, ...] | None = None) -> KeyInfo:
    return KeyInfo(
        id=key_id,
        person_id=100 + key_id,
        name="laptop",
        prefix=prefix,
        allowed_models=allowed,
        created_utc=datetime(2026, 1, 1, tzinfo=UTC),
    )


@dataclass(frozen=True)
class Settled:
    ticket: Ticket
    usage: TokenUsage | None
    status: int
    estimated: bool
    started_s: float  # time.monotonic() when settle was called
    done_s: float  # ... and when it returned


@dataclass
class FakeMeter:
    keys: dict[str, KeyInfo] = field(
        default_factory=lambda: {
            GOOD_KEY: key_info(1, "twk_0000aaaa"),
            NARROW_KEY: key_info(2, "twk_0000bbbb", ("gpt-4o-mini", "claude-haiku-*")),
        }
    )
    settle_delay_s: float = 0.0
    refuse_with: TokenwageError | None = None
    downgrades: dict[str, str] = field(default_factory=dict)
    authorized: list[RequestFacts] = field(default_factory=list)
    authenticated: list[str | None] = field(default_factory=list)
    settled: list[Settled] = field(default_factory=list)
    cancelled: list[tuple[Ticket, int]] = field(default_factory=list)
    booked: list[tuple[KeyInfo, list[ImportedUsage]]] = field(default_factory=list)

    async def book_imported(self, key: KeyInfo, records: list[ImportedUsage]) -> int:
        self.booked.append((key, records))
        return len(records)

    def journal_status(self) -> tuple[int, int] | None:
        return None

    async def authenticate(self, raw_key: str | None) -> KeyInfo:
        self.authenticated.append(raw_key)
        info = self.keys.get(raw_key or "")
        if info is None:
            raise Unauthenticated("invalid API key: this is not a tokenwage key that exists")
        return info

    def allowed_models(self, key: KeyInfo, models: list[str]) -> list[str]:
        return [m for m in models if key.allows(m)]

    async def authorize(self, raw_key: str | None, facts: RequestFacts) -> Ticket:
        self.authorized.append(facts)
        key = await self.authenticate(raw_key)
        if self.refuse_with is not None:
            raise self.refuse_with
        if not key.allows(facts.model):
            raise ModelNotAllowed(f"key {key.prefix} may not use {facts.model!r}")
        model = self.downgrades.get(facts.model, facts.model)
        return Ticket(facts, key, key.person_id, model, HOLD_NANOUSD, time.monotonic())

    async def settle(
        self,
        ticket: Ticket,
        usage: TokenUsage | None,
        *,
        status: int,
        estimated: bool = False,
        upstream_request_id: str | None = None,
    ) -> Money:
        started = time.monotonic()
        if self.settle_delay_s:
            await asyncio.sleep(self.settle_delay_s)
        self.settled.append(Settled(ticket, usage, status, estimated, started, time.monotonic()))
        if usage is None:
            return Money(0)
        return Money((usage.prompt_tokens + usage.output_tokens) * NANOUSD_PER_TOKEN)

    async def cancel(self, ticket: Ticket, *, status: int) -> None:
        self.cancelled.append((ticket, status))

    def wait_settled(self, count: int = 1, timeout_s: float = 5.0) -> list[Settled]:
        """The first ``count`` settlements, once there are that many (the gateway may still be
        reading a stream whose client went away)."""
        deadline = time.monotonic() + timeout_s
        while len(self.settled) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} settle() calls, got {len(self.settled)}")
            time.sleep(0.005)
        return self.settled[:count]
