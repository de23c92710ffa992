"""The caller's own API tokens: ``/api/v1/api-tokens``. The secret is in the create answer
only; only its SHA-256 is stored."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from tokenwage.core.errors import NotFound
from tokenwage.storage.web_repo import ApiTokenInfo, WebRepo
from tokenwage.web import accounts
from tokenwage.web.api.common import PREFIX, ApiViewer, Db, now_utc

router = APIRouter(prefix=PREFIX, tags=["API tokens"])


class TokenOut(BaseModel):
    name: str
    prefix: str
    created_utc: datetime
    expires_utc: datetime | None
    revoked_utc: datetime | None
    last_used_utc: datetime | None
    active: bool

    @classmethod
    def of(cls, t: ApiTokenInfo, now: datetime) -> TokenOut:
        return cls(
            name=t.name,
            prefix=t.prefix,
            created_utc=t.created_utc,
            expires_utc=t.expires_utc,
            revoked_utc=t.revoked_utc,
            last_used_utc=t.last_used_utc,
            active=t.usable_at(now),
        )


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    expires_days: int | None = Field(default=None, ge=1, le=accounts.MAX_TOKEN_DAYS)


class NewToken(TokenOut):
    secret: str = Field(description="Send as 'Authorization: Bearer <secret>'; shown once.")


@router.get("/api-tokens", response_model=list[TokenOut])
def list_tokens(viewer: ApiViewer, db: Db) -> list[TokenOut]:
    now = now_utc()
    with db.begin() as conn:
        found = accounts.list_api_tokens(conn, viewer.email)
    return [TokenOut.of(t, now) for t in found]


@router.post("/api-tokens", response_model=NewToken, status_code=201)
def create_token(body: TokenIn, viewer: ApiViewer, db: Db) -> NewToken:
    """A new token acting as the caller, with the caller's role."""
    now = now_utc()
    with db.begin() as conn:
        info, raw = accounts.create_api_token(
            conn, viewer.email, body.name, actor=viewer.actor, now=now,
            expires_days=body.expires_days,
        )  # fmt: skip
    return NewToken(**TokenOut.of(info, now).model_dump(), secret=raw)


@router.delete("/api-tokens/{prefix}", response_model=TokenOut)
def revoke_token(prefix: str, viewer: ApiViewer, db: Db) -> TokenOut:
    with db.begin() as conn:
        info = WebRepo(conn).api_token_by_prefix(prefix)
        if info.person_id != viewer.person_id:
            raise NotFound(f"you have no API token {prefix!r}")
        revoked = accounts.revoke_api_token(conn, prefix, actor=viewer.actor, now=now_utc())
    return TokenOut.of(revoked, now_utc())
