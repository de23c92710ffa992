"""Usage that bypassed the gateway, as every importer hands it over.

Parsers (``tokenwage.importers.*``) turn agent logs, provider exports and CSV files into
:class:`ImportedUsage` records; one service books them all (``services/importing.py``):
attribution, deduplication, pricing, usage records and, in ``charge`` mode, ledger debits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from tokenwage.core.errors import InvalidInput
from tokenwage.core.money import Money
from tokenwage.core.usage import TokenUsage


class ChargeMode(StrEnum):
    CHARGE = "charge"  # debits the person's allowance
    TRACK = "track"  # visibility only: the person pays for this elsewhere


class IdentityKind(StrEnum):
    EMAIL = "email"
    PROVIDER_USER = "provider_user"  # e.g. OpenAI user id, Anthropic user id
    API_KEY = "api_key"  # a provider API key id (never the secret)
    HOSTNAME = "hostname"
    ACCOUNT = "account"  # e.g. a Claude Code account uuid, Cursor user id
    PROJECT = "project"  # an OpenAI project or Anthropic workspace, for shared keys


@dataclass(frozen=True, slots=True)
class Identity:
    kind: IdentityKind
    value: str

    def normalised(self) -> Identity:
        return Identity(self.kind, self.value.strip().lower())


@dataclass(frozen=True, slots=True)
class ImportedUsage:
    """One usage event (or one aggregated bucket) from outside the gateway."""

    source: str  # "claude_code", "codex", "openai_usage", "anthropic_usage", "cursor", "csv", ...
    key: str  # deduplication key, unique within the source (e.g. message id + request id)
    used_utc: datetime
    provider: str
    model: str
    usage: TokenUsage
    identities: tuple[Identity, ...] = ()  # who: tried in order until one maps to a person
    session_id: str | None = None
    project: str | None = None
    hostname: str | None = None
    message_id: str | None = None  # provider message id (msg_..., resp_...)
    upstream_request_id: str | None = None  # provider request id (req_...)
    reported_cost: Money | None = None  # what the source says it cost, when it says
    requests: int = 1  # >1 for aggregated buckets
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.used_utc.tzinfo is None:
            raise InvalidInput(f"{self.source} usage {self.key}: timestamp has no time zone")
        if not self.key:
            raise InvalidInput(f"{self.source} usage without a deduplication key")
        if self.requests < 1:
            raise InvalidInput(f"{self.source} usage {self.key}: requests must be at least 1")

    @property
    def record_id(self) -> str:
        """The ``usage_records.request_id`` this usage is stored under."""
        return f"{self.source}:{self.key}"
