"""Virtual keys for the gateway: ``/api/v1/people/{id}/keys``. A person lists, creates and
revokes their own; an admin anyone's. The secret is in the create answer only."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from tokenwage.core.errors import NotFound
from tokenwage.core.keys import KeyInfo
from tokenwage.services import keys as service
from tokenwage.web.api.common import (
    PREFIX,
    ApiViewer,
    Cursor,
    Db,
    KeyedPerson,
    Limit,
    Page,
    audit,
    now_utc,
    paged,
)

router = APIRouter(prefix=PREFIX, tags=["virtual keys"])


class KeyOut(BaseModel):
    id: int
    person_id: int
    name: str
    prefix: str
    allowed_models: list[str] | None
    created_utc: datetime
    expires_utc: datetime | None
    revoked_utc: datetime | None
    last_used_utc: datetime | None
    active: bool

    @classmethod
    def of(cls, k: KeyInfo, now: datetime) -> KeyOut:
        return cls(
            id=k.id,
            person_id=k.person_id,
            name=k.name,
            prefix=k.prefix,
            allowed_models=list(k.allowed_models) if k.allowed_models else None,
            created_utc=k.created_utc,
            expires_utc=k.expires_utc,
            revoked_utc=k.revoked_utc,
            last_used_utc=k.last_used_utc,
            active=k.usable_at(now),
        )


class KeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    expires_days: int | None = Field(default=None, ge=1, le=3660)
    allowed_models: list[str] = Field(
        default_factory=list, description="fnmatch patterns such as 'claude-*'; empty: all."
    )


class NewKey(KeyOut):
    secret: str = Field(description="The key itself: shown this once, never stored.")


@router.get("/people/{person_id}/keys", response_model=Page[KeyOut])
def list_keys(person: KeyedPerson, db: Db, limit: Limit = 100, cursor: Cursor = None) -> Any:
    now = now_utc()
    with db.begin() as conn:
        found = service.list_keys(conn, person.email)
    items, next_cursor = paged(
        [KeyOut.of(k, now) for k, _email in found], lambda k: (k.id,), limit, cursor
    )
    return Page[KeyOut](items=items, next_cursor=next_cursor)


@router.post("/people/{person_id}/keys", response_model=NewKey, status_code=201)
def create_key(person: KeyedPerson, body: KeyIn, viewer: ApiViewer, db: Db) -> NewKey:
    """A new key; copy ``secret`` now, it is not shown again."""
    now = now_utc()
    expires = now + timedelta(days=body.expires_days) if body.expires_days else None
    with db.begin() as conn:
        info, raw = service.create_key(
            conn,
            email=person.email,
            name=body.name,
            now=now,
            expires_utc=expires,
            allowed_models=body.allowed_models,
        )
        audit(conn, viewer, "key.create", {"person": person.email, "prefix": info.prefix})
    return NewKey(**KeyOut.of(info, now).model_dump(), secret=raw)


@router.delete("/people/{person_id}/keys/{prefix}", response_model=KeyOut)
def revoke_key(person: KeyedPerson, prefix: str, viewer: ApiViewer, db: Db) -> KeyOut:
    with db.begin() as conn:
        owned = {k.prefix for k, _email in service.list_keys(conn, person.email)}
        if prefix not in owned:
            raise NotFound(f"{person.email} has no key {prefix!r}")
        info = service.revoke_key(conn, prefix, now_utc())
        audit(conn, viewer, "key.revoke", {"person": person.email, "prefix": prefix})
    return KeyOut.of(info, now_utc())
