"""Persistence for virtual keys (hashes only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Row, insert, select, update

from tokenwage.core.errors import NotFound
from tokenwage.core.keys import KeyInfo
from tokenwage.storage.schema import people, virtual_keys


class KeysRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(
        self,
        *,
        person_id: int,
        name: str,
        prefix: str,
        secret_sha256: str,
        allowed_models: tuple[str, ...] | None,
        created_utc: datetime,
        expires_utc: datetime | None,
    ) -> int:
        result = self.conn.execute(
            insert(virtual_keys).values(
                person_id=person_id,
                name=name,
                prefix=prefix,
                secret_sha256=secret_sha256,
                allowed_models=orjson.dumps(list(allowed_models)).decode()
                if allowed_models
                else None,
                created_utc=created_utc,
                expires_utc=expires_utc,
            )
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def by_digest(self, secret_sha256: str) -> KeyInfo | None:
        row = self.conn.execute(
            select(virtual_keys).where(virtual_keys.c.secret_sha256 == secret_sha256)
        ).first()
        return _info(row) if row else None

    def by_prefix(self, prefix: str) -> KeyInfo:
        row = self.conn.execute(select(virtual_keys).where(virtual_keys.c.prefix == prefix)).first()
        if row is None:
            raise NotFound(f"no key {prefix!r}; see `tokenwage keys list`")
        return _info(row)

    def list_for(self, person_id: int | None = None) -> list[tuple[KeyInfo, str]]:
        """Keys with their owner's email, newest first."""
        q = (
            select(virtual_keys, people.c.email)
            .join(people, people.c.id == virtual_keys.c.person_id)
            .order_by(virtual_keys.c.created_utc.desc(), virtual_keys.c.id.desc())
        )
        if person_id is not None:
            q = q.where(virtual_keys.c.person_id == person_id)
        return [(_info(r), r.email) for r in self.conn.execute(q)]

    def revoke(self, key_id: int, at: datetime) -> None:
        self.conn.execute(
            update(virtual_keys)
            .where(virtual_keys.c.id == key_id, virtual_keys.c.revoked_utc.is_(None))
            .values(revoked_utc=at)
        )

    def touch(self, key_ids: list[int], at: datetime) -> None:
        if key_ids:
            self.conn.execute(
                update(virtual_keys).where(virtual_keys.c.id.in_(key_ids)).values(last_used_utc=at)
            )


def _info(r: Row[Any]) -> KeyInfo:
    return KeyInfo(
        id=r.id,
        person_id=r.person_id,
        name=r.name,
        prefix=r.prefix,
        allowed_models=tuple(orjson.loads(r.allowed_models)) if r.allowed_models else None,
        created_utc=r.created_utc,
        expires_utc=r.expires_utc,
        revoked_utc=r.revoked_utc,
        last_used_utc=r.last_used_utc,
    )
