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


# -- the wire format of `tokenwage push` (POST /v1/usage) -----------------------------------
_USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "reasoning_tokens",
)
_OPTIONAL = ("session_id", "project", "hostname", "message_id", "upstream_request_id")
MAX_PUSH_RECORDS = 5000


def to_wire(r: ImportedUsage) -> dict[str, object]:
    """A JSON-safe dict (no floats: money as nanousd integers)."""
    out: dict[str, object] = {
        "source": r.source,
        "key": r.key,
        "used_utc": r.used_utc.isoformat(),
        "provider": r.provider,
        "model": r.model,
        "usage": {f: getattr(r.usage, f) for f in _USAGE_FIELDS},
        "identities": [[i.kind.value, i.value] for i in r.identities],
        "requests": r.requests,
    }
    for name in _OPTIONAL:
        value = getattr(r, name)
        if value is not None:
            out[name] = value
    if r.reported_cost is not None:
        out["reported_cost_nanousd"] = r.reported_cost.nanousd
    return out


def from_wire(item: object, where: str) -> ImportedUsage:
    """The inverse of :func:`to_wire`; ``InvalidInput`` naming ``where`` for a bad item."""
    if not isinstance(item, dict):
        raise InvalidInput(f"{where}: a usage record must be a JSON object")
    try:
        usage = item.get("usage") or {}
        if not isinstance(usage, dict):
            raise InvalidInput("usage must be an object of token counts")
        stamp = datetime.fromisoformat(str(item["used_utc"]))
        cost = item.get("reported_cost_nanousd")
        identities = tuple(
            Identity(IdentityKind(kind), str(value)) for kind, value in item.get("identities", [])
        )
        return ImportedUsage(
            source=_name(item["source"]),
            key=str(item["key"]),
            used_utc=stamp,
            provider=str(item["provider"]),
            model=str(item["model"]),
            usage=TokenUsage(**{f: usage.get(f, 0) for f in _USAGE_FIELDS}),
            identities=identities,
            reported_cost=Money(cost) if isinstance(cost, int) else None,
            requests=int(item.get("requests", 1)),
            session_id=_opt_str(item.get("session_id")),
            project=_opt_str(item.get("project")),
            hostname=_opt_str(item.get("hostname")),
            message_id=_opt_str(item.get("message_id")),
            upstream_request_id=_opt_str(item.get("upstream_request_id")),
        )
    except KeyError as exc:
        raise InvalidInput(f"{where}: missing field {exc.args[0]!r}") from None
    except (TypeError, ValueError, InvalidInput) as exc:
        raise InvalidInput(f"{where}: {exc}") from None


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def _name(value: object) -> str:
    text = str(value)
    if not text or len(text) > 40 or text == "gateway":
        raise InvalidInput(f"source {text!r} is not an importer name")
    return text
