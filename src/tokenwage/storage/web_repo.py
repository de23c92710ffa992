"""Persistence for dashboard sign-in: logins, browser sessions, API tokens, audit entries.

Secrets never reach this module in the clear: sessions and API tokens are stored as the
SHA-256 of the random value the client holds, passwords as an argon2id hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Row, delete, insert, select, update

from tokenwage.core.errors import NotFound
from tokenwage.core.org import Role
from tokenwage.storage.schema import api_tokens, audit_log, logins, people, web_sessions


@dataclass(frozen=True)
class Account:
    """A person as the dashboard sees them when they sign in."""

    person_id: int
    email: str
    name: str
    role: Role


@dataclass(frozen=True)
class Login:
    person_id: int
    password_hash: str
    disabled_utc: datetime | None


@dataclass(frozen=True)
class SessionRow:
    account: Account
    csrf_token: str
    created_utc: datetime
    expires_utc: datetime
    last_seen_utc: datetime


@dataclass(frozen=True)
class ApiTokenInfo:
    id: int
    person_id: int
    email: str
    name: str
    prefix: str
    created_utc: datetime
    expires_utc: datetime | None
    revoked_utc: datetime | None
    last_used_utc: datetime | None

    def usable_at(self, now: datetime) -> bool:
        if self.revoked_utc is not None:
            return False
        return self.expires_utc is None or now < self.expires_utc


def _account(r: Any) -> Account:
    return Account(person_id=r.person_id, email=r.email, name=r.name, role=Role(r.role))


class WebRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # -- accounts and logins ----------------------------------------------------------------
    def account_by_email(self, email: str) -> Account | None:
        q = select(
            people.c.id.label("person_id"), people.c.email, people.c.name, people.c.role
        ).where(people.c.email == email)
        row = self.conn.execute(q).first()
        return _account(row) if row else None

    def login(self, person_id: int) -> Login | None:
        row = self.conn.execute(select(logins).where(logins.c.person_id == person_id)).first()
        if row is None:
            return None
        return Login(row.person_id, row.password_hash, row.disabled_utc)

    def set_password_hash(self, person_id: int, password_hash: str, now: datetime) -> bool:
        """Store a new hash (and re-enable the login); True if the login was created."""
        if self.login(person_id) is None:
            self.conn.execute(
                insert(logins).values(
                    person_id=person_id,
                    password_hash=password_hash,
                    created_utc=now,
                    password_changed_utc=now,
                )
            )
            return True
        self.conn.execute(
            update(logins)
            .where(logins.c.person_id == person_id)
            .values(password_hash=password_hash, password_changed_utc=now, disabled_utc=None)
        )
        return False

    def rehash(self, person_id: int, password_hash: str) -> None:
        """Same password, new hash parameters: not a password change."""
        self.conn.execute(
            update(logins)
            .where(logins.c.person_id == person_id)
            .values(password_hash=password_hash)
        )

    def record_login(self, person_id: int, now: datetime) -> None:
        self.conn.execute(
            update(logins).where(logins.c.person_id == person_id).values(last_login_utc=now)
        )

    def disable_login(self, person_id: int, now: datetime) -> None:
        if self.login(person_id) is None:
            raise NotFound("this person has no dashboard login; set one with `login set-password`")
        self.conn.execute(
            update(logins).where(logins.c.person_id == person_id).values(disabled_utc=now)
        )
        self.delete_sessions_of(person_id)

    # -- sessions ---------------------------------------------------------------------------
    def add_session(
        self, token_sha256: str, person_id: int, csrf_token: str, now: datetime, expires: datetime
    ) -> None:
        self.conn.execute(
            insert(web_sessions).values(
                token_sha256=token_sha256,
                person_id=person_id,
                csrf_token=csrf_token,
                created_utc=now,
                expires_utc=expires,
                last_seen_utc=now,
            )
        )

    def session(self, token_sha256: str) -> SessionRow | None:
        """The session and its person, unless the person's login is disabled or gone."""
        q = (
            select(
                web_sessions,
                people.c.email,
                people.c.name,
                people.c.role,
            )
            .join(people, people.c.id == web_sessions.c.person_id)
            .join(logins, logins.c.person_id == web_sessions.c.person_id)
            .where(web_sessions.c.token_sha256 == token_sha256, logins.c.disabled_utc.is_(None))
        )
        row = self.conn.execute(q).first()
        if row is None:
            return None
        return SessionRow(
            _account(row), row.csrf_token, row.created_utc, row.expires_utc, row.last_seen_utc
        )

    def touch_session(self, token_sha256: str, now: datetime) -> None:
        self.conn.execute(
            update(web_sessions)
            .where(web_sessions.c.token_sha256 == token_sha256)
            .values(last_seen_utc=now)
        )

    def delete_session(self, token_sha256: str) -> None:
        self.conn.execute(delete(web_sessions).where(web_sessions.c.token_sha256 == token_sha256))

    def delete_sessions_of(self, person_id: int) -> None:
        self.conn.execute(delete(web_sessions).where(web_sessions.c.person_id == person_id))

    def delete_expired_sessions(self, now: datetime) -> None:
        self.conn.execute(delete(web_sessions).where(web_sessions.c.expires_utc <= now))

    # -- API tokens -------------------------------------------------------------------------
    def add_api_token(
        self,
        *,
        person_id: int,
        name: str,
        prefix: str,
        secret_sha256: str,
        now: datetime,
        expires_utc: datetime | None,
    ) -> int:
        result = self.conn.execute(
            insert(api_tokens).values(
                person_id=person_id,
                name=name,
                prefix=prefix,
                secret_sha256=secret_sha256,
                created_utc=now,
                expires_utc=expires_utc,
            )
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def _tokens_query(self) -> Any:
        return select(api_tokens, people.c.email).join(
            people, people.c.id == api_tokens.c.person_id
        )

    def api_token_by_prefix(self, prefix: str) -> ApiTokenInfo:
        row = self.conn.execute(self._tokens_query().where(api_tokens.c.prefix == prefix)).first()
        if row is None:
            raise NotFound(f"no API token {prefix!r}; see `tokenwage api-token list`")
        return _token(row)

    def api_token_by_digest(self, secret_sha256: str) -> tuple[ApiTokenInfo, Account] | None:
        q = (
            select(api_tokens, people.c.email, people.c.name, people.c.role)
            .join(people, people.c.id == api_tokens.c.person_id)
            .where(api_tokens.c.secret_sha256 == secret_sha256)
        )
        row = self.conn.execute(q).first()
        return (_token(row), _account(row)) if row else None

    def list_api_tokens(self, person_id: int | None = None) -> list[ApiTokenInfo]:
        q = self._tokens_query().order_by(api_tokens.c.created_utc.desc(), api_tokens.c.id.desc())
        if person_id is not None:
            q = q.where(api_tokens.c.person_id == person_id)
        return [_token(r) for r in self.conn.execute(q)]

    def revoke_api_token(self, token_id: int, now: datetime) -> None:
        self.conn.execute(
            update(api_tokens)
            .where(api_tokens.c.id == token_id, api_tokens.c.revoked_utc.is_(None))
            .values(revoked_utc=now)
        )

    def touch_api_token(self, token_id: int, now: datetime) -> None:
        self.conn.execute(
            update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_utc=now)
        )

    # -- audit ------------------------------------------------------------------------------
    def audit(self, actor: str, action: str, detail: dict[str, Any], now: datetime) -> None:
        """One audit entry; ``detail`` is stored as compact JSON and must hold no secret."""
        text = orjson.dumps(detail, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
        self.conn.execute(
            insert(audit_log).values(at_utc=now, actor=actor, action=action, detail=text.decode())
        )


def _token(r: Row[Any]) -> ApiTokenInfo:
    return ApiTokenInfo(
        id=r.id,
        person_id=r.person_id,
        email=r.email,
        name=r.name,
        prefix=r.prefix,
        created_utc=r.created_utc,
        expires_utc=r.expires_utc,
        revoked_utc=r.revoked_utc,
        last_used_utc=r.last_used_utc,
    )
