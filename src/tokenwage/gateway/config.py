"""Gateway configuration: providers, model routing, hold policy and downgrades.

With nothing configured, ``TOKENWAGE_OPENAI_BASE_URL`` + ``TOKENWAGE_OPENAI_API_KEY`` route
the OpenAI endpoints and ``TOKENWAGE_ANTHROPIC_BASE_URL`` + ``TOKENWAGE_ANTHROPIC_API_KEY``
route ``/v1/messages``. A TOML file (``--config`` or ``TOKENWAGE_GATEWAY_CONFIG``) adds
providers and maps model patterns to them::

    [providers.openai]
    kind = "openai"                         # which inbound API it speaks: openai | anthropic
    base_url = "https://api.openai.com"     # without /v1
    api_key_env = "OPENAI_ORG_KEY"          # the NAME of the variable holding the org key

    [providers.vllm]
    kind = "openai"
    base_url = "http://127.0.0.1:8000"
    api_key_env = "VLLM_KEY"
    pricing_provider = "self"               # provider id for prices (overrides, see `price`)
    models = ["llama-*", "qwen*"]           # patterns routed here (first match wins)

    sqlite_synchronous = "NORMAL"           # FULL: one fsync per settlement batch
    reported_mode = "track"                 # OTLP telemetry and pushed logs: track or charge

    [holds]
    default_max_output_tokens = 4096        # when the client sets no limit
    max_hold_output_tokens = 8192           # cap per request; the overdraft covers the rest
    ttl_seconds = 600                       # the sweeper releases holds older than this

    [downgrade]                             # below the threshold, swap to a cheaper model
    below_usd = "10"
    models = { "claude-opus-4-1" = "claude-sonnet-4-5", "gpt-5" = "gpt-5-mini" }

Keys are never read from the file itself and never logged: only variable names are.
"""

from __future__ import annotations

import fnmatch
import os
import tomllib
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from tokenwage.core.errors import InvalidInput
from tokenwage.core.money import Money

ProviderKind = Literal["openai", "anthropic"]


class ProviderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: ProviderKind
    base_url: str
    api_key: SecretStr = SecretStr("")
    pricing_provider: str = ""  # defaults to ``kind``
    models: tuple[str, ...] = ()  # fnmatch patterns; empty = the default for its kind

    @field_validator("base_url")
    @classmethod
    def _strip(cls, v: str) -> str:
        v = v.rstrip("/")
        if v.endswith("/v1"):
            v = v[: -len("/v1")]
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"base_url {v!r} must start with http:// or https://")
        return v

    @property
    def price_provider(self) -> str:
        return self.pricing_provider or self.kind

    def serves(self, model: str) -> bool:
        name = model.lower()
        return any(fnmatch.fnmatchcase(name, p.lower()) for p in self.models)


class HoldPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    default_max_output_tokens: int = Field(4096, ge=1)
    max_hold_output_tokens: int | None = Field(None, ge=1)
    ttl_seconds: int = Field(600, ge=10, le=86_400)


class DowngradePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    below_usd: Decimal = Decimal(0)
    models: dict[str, str] = Field(default_factory=dict)

    @property
    def below(self) -> Money:
        return Money.parse(self.below_usd)

    def target(self, model: str) -> str | None:
        return self.models.get(model) or self.models.get(model.lower())


class GatewayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    providers: tuple[ProviderConfig, ...] = ()
    # SQLite: NORMAL journals each settlement with one write(2) and books it a few ms later
    # (no fsync; a killed process loses nothing, a power cut may lose the last moments).
    # FULL commits each settlement batch to the database with an fsync before answering.
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    # Usage reported to the gateway (OTLP telemetry, `tokenwage push`) rather than metered
    # by it: usually on personal plans, so tracked only unless set to "charge"
    reported_mode: Literal["track", "charge"] = "track"

    holds: HoldPolicy = HoldPolicy()
    downgrade: DowngradePolicy = DowngradePolicy()

    @property
    def journaled(self) -> bool:
        """Whether settlements go through the settlement journal (on a SQLite database)."""
        return self.sqlite_synchronous == "NORMAL"

    def route(self, kind: ProviderKind, model: str) -> ProviderConfig | None:
        """The provider for ``model`` on an inbound API of ``kind``: first pattern match,
        else the first provider of that kind without patterns."""
        candidates = [p for p in self.providers if p.kind == kind]
        for p in candidates:
            if p.models and p.serves(model):
                return p
        return next((p for p in candidates if not p.models), None)


def load_gateway_config(
    path: Path | None = None, env: Mapping[str, str] | None = None
) -> GatewayConfig:
    """Environment defaults, then the TOML file's providers and policies on top."""
    env = os.environ if env is None else env
    if path is None and env.get("TOKENWAGE_GATEWAY_CONFIG"):
        path = Path(env["TOKENWAGE_GATEWAY_CONFIG"])
    raw = _read_toml(path) if path is not None else {}
    providers: dict[str, dict[str, object]] = {}
    for kind in ("openai", "anthropic"):
        base = env.get(f"TOKENWAGE_{kind.upper()}_BASE_URL")
        if base:
            key = env.get(f"TOKENWAGE_{kind.upper()}_API_KEY", "")
            providers[kind] = {"name": kind, "kind": kind, "base_url": base, "api_key": key}
    file_providers = raw.pop("providers", {})
    if not isinstance(file_providers, dict):
        raise InvalidInput("gateway config: [providers] must be a table of tables")
    for name, spec in file_providers.items():
        providers.pop(name, None)  # the file's definition replaces the environment's
        providers[name] = {"name": name, **_provider_spec(name, spec, env)}
    try:
        return GatewayConfig.model_validate({"providers": list(providers.values()), **raw})
    except ValidationError as exc:
        raise InvalidInput(f"gateway config is not valid:\n{exc}") from None


def _read_toml(path: Path) -> dict[str, object]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput(f"gateway config {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"gateway config {path}: {exc}") from None


def _provider_spec(name: str, spec: object, env: Mapping[str, str]) -> dict[str, object]:
    if not isinstance(spec, dict):
        raise InvalidInput(f"gateway config: [providers.{name}] must be a table")
    spec = dict(spec)
    if "api_key" in spec:
        raise InvalidInput(
            f"gateway config: [providers.{name}] must not contain api_key; "
            "name the environment variable that holds it with api_key_env"
        )
    key_env = spec.pop("api_key_env", None)
    if key_env is not None:
        if not isinstance(key_env, str) or key_env not in env:
            raise InvalidInput(
                f"gateway config: [providers.{name}] api_key_env {key_env!r} is not set"
            )
        spec["api_key"] = env[key_env]
    return spec
