"""The contract between the gateway's HTTP layer and metering.

The HTTP layer never touches money or the database: it calls :meth:`Meter.authorize`
before forwarding and exactly one of :meth:`Meter.settle` / :meth:`Meter.cancel` after.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tokenwage.core.imported import ImportedUsage
from tokenwage.core.keys import KeyInfo
from tokenwage.core.money import Money
from tokenwage.core.usage import TokenUsage


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the HTTP layer knows about a request before forwarding it."""

    request_id: str  # ours, unique; also sent upstream and back as x-tokenwage-request-id
    endpoint: str  # "openai.chat", "openai.responses", "openai.embeddings", "anthropic.messages"
    provider: str  # the pricing provider id, e.g. "openai", "anthropic"
    model: str  # as the client asked for it
    stream: bool
    prompt_tokens_estimate: int
    max_output_tokens: int | None  # None when the client set no limit


@dataclass(frozen=True, slots=True)
class Ticket:
    """An authorized request: who pays, which model to send, and the hold placed for it."""

    facts: RequestFacts
    key: KeyInfo
    person_id: int
    model: str  # the model to send upstream (differs from facts.model after a downgrade)
    hold_nanousd: int
    started_monotonic: float
    lease: str | None = None  # the worker's lease the hold was taken from; None: a hold row


class Meter(Protocol):
    async def authorize(self, raw_key: str | None, facts: RequestFacts) -> Ticket:
        """Check the key and place one atomic hold for the worst-case cost.

        Raises ``Unauthenticated`` (401), ``ModelNotAllowed`` (403), ``AllowanceExhausted``
        (the person cannot pay; its message states balance, allowance and next refill),
        ``UnknownModelPrice`` (400: the org rejects unpriced models) or ``StoreUnavailable``.
        """
        ...

    async def settle(
        self,
        ticket: Ticket,
        usage: TokenUsage | None,
        *,
        status: int,
        estimated: bool = False,
        upstream_request_id: str | None = None,
    ) -> Money:
        """Record the request and charge its cost; release the hold. Returns once durable,
        with the amount charged (zero for a request already settled or not charged).

        ``usage`` None means the upstream reported none (an upstream error): recorded,
        never charged. ``estimated`` marks usage the gateway had to estimate (a stream that
        ended without its usage event). ``upstream_request_id`` is the provider's own id of
        the request (its ``request-id`` / ``x-request-id`` header), kept so the same request
        found later in an agent's logs is known as already charged. Idempotent per
        ``facts.request_id``.
        """
        ...

    async def cancel(self, ticket: Ticket, *, status: int) -> None:
        """Release the hold of a request that never reached the provider; record nothing."""
        ...

    def allowed_models(self, key: KeyInfo, models: list[str]) -> list[str]:
        """The subset of ``models`` this key may use (for ``GET /v1/models``)."""
        ...

    async def authenticate(self, raw_key: str | None) -> KeyInfo:
        """Just the key check (for endpoints that cost nothing, e.g. ``/v1/models``)."""
        ...

    async def book_imported(self, key: KeyInfo, records: list[ImportedUsage]) -> int:
        """Book usage reported to the gateway (OTLP telemetry) through the importers' one
        booking path; records nobody else claims are attributed to the key's owner.
        Returns how many new usage records were written."""
        ...

    def journal_status(self) -> tuple[int, int] | None:
        """(settlements this process journaled that are not booked yet, journal lines the
        folder rejected), or None when settling does not go through a journal."""
        ...
