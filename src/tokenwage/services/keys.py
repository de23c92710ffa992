"""Create, list and revoke virtual keys. A key's secret is returned once and never stored."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection

from tokenwage.core import keys
from tokenwage.core.errors import InvalidInput
from tokenwage.core.keys import KeyInfo
from tokenwage.storage.keys_repo import KeysRepo
from tokenwage.storage.org_repo import OrgRepo


def create_key(
    conn: Connection,
    *,
    email: str,
    name: str,
    now: datetime,
    expires_utc: datetime | None = None,
    allowed_models: Sequence[str] = (),
) -> tuple[KeyInfo, str]:
    """A new key for ``email``: its info and the raw secret (show it once)."""
    if not name.strip() or len(name) > 100:
        raise InvalidInput("a key needs a --name of 1 to 100 characters (e.g. 'laptop')")
    if expires_utc is not None and expires_utc <= now:
        raise InvalidInput("a key's expiry must be in the future")
    person_id = OrgRepo(conn).person_id(email)
    raw, prefix = keys.generate()
    repo = KeysRepo(conn)
    repo.add(
        person_id=person_id,
        name=name.strip(),
        prefix=prefix,
        secret_sha256=keys.digest(raw),
        allowed_models=keys.parse_allowed_models(allowed_models),
        created_utc=now,
        expires_utc=expires_utc,
    )
    return repo.by_prefix(prefix), raw


def revoke_key(conn: Connection, prefix_or_key: str, now: datetime) -> KeyInfo:
    prefix = keys.prefix_of(prefix_or_key) or prefix_or_key.strip()
    repo = KeysRepo(conn)
    info = repo.by_prefix(prefix)
    repo.revoke(info.id, now)
    return repo.by_prefix(prefix)


def list_keys(conn: Connection, email: str | None = None) -> list[tuple[KeyInfo, str]]:
    person_id = OrgRepo(conn).person_id(email) if email else None
    return KeysRepo(conn).list_for(person_id)
