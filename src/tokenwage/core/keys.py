"""Virtual API keys: format, generation and hashing.

A key looks like ``twk_3f9a1c2b_<43 url-safe characters>``: a fixed marker, an 8-character
public id (the *prefix*, shown in lists so people can tell keys apart) and 256 random bits.
Only the SHA-256 of the whole key is stored; it is shown once, when created. (A slow hash
such as argon2 protects low-entropy passwords; for 256-bit random secrets SHA-256 is
already infeasible to reverse, and it keeps the gateway's hot path fast.)
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tokenwage.core.errors import InvalidInput

MARKER = "twk"


class SecretFormat:
    """Secrets shaped ``{marker}_<8 hex>_<43 url-safe characters>``: virtual keys here, the
    dashboard's API tokens (:mod:`tokenwage.web.accounts`) with another marker."""

    def __init__(self, marker: str) -> None:
        self.marker = marker
        self._pattern = re.compile(rf"^{marker}_([0-9a-f]{{8}})_[A-Za-z0-9_-]{{43}}$")

    def generate(self) -> tuple[str, str]:
        """A new secret and its prefix."""
        prefix = f"{self.marker}_{secrets.token_hex(4)}"
        return f"{prefix}_{secrets.token_urlsafe(32)}", prefix

    def matches(self, raw: str) -> bool:
        return self._pattern.match(raw) is not None

    def prefix_of(self, raw: str) -> str | None:
        m = self._pattern.match(raw)
        return f"{self.marker}_{m.group(1)}" if m else None


def digest(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


VIRTUAL_KEY = SecretFormat(MARKER)
generate = VIRTUAL_KEY.generate
looks_like_key = VIRTUAL_KEY.matches
prefix_of = VIRTUAL_KEY.prefix_of


@dataclass(frozen=True)
class KeyInfo:
    """What the gateway needs to know about a key, without its secret."""

    id: int
    person_id: int
    name: str
    prefix: str
    allowed_models: tuple[str, ...] | None
    created_utc: datetime
    expires_utc: datetime | None = None
    revoked_utc: datetime | None = None
    last_used_utc: datetime | None = None

    def usable_at(self, now: datetime) -> bool:
        if self.revoked_utc is not None and self.revoked_utc <= now:
            return False
        return self.expires_utc is None or now < self.expires_utc

    def allows(self, model: str) -> bool:
        if not self.allowed_models:
            return True
        name = model.lower()
        return any(fnmatch.fnmatchcase(name, p) for p in self.allowed_models)


def parse_allowed_models(patterns: Sequence[str]) -> tuple[str, ...] | None:
    cleaned = tuple(p.strip().lower() for p in patterns if p.strip())
    for p in cleaned:
        if len(p) > 200:
            raise InvalidInput(f"model pattern {p[:40]!r}... is too long")
    return cleaned or None
