"""Dashboard logins and API tokens: set and check passwords, create and revoke tokens.

Each change writes an audit entry. API tokens look like ``twa_3f9a1c2b_<43 characters>``
(the same shape as virtual keys, another marker): the prefix is shown in lists, the whole
token once, and only its SHA-256 is stored.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection

from tokenwage.core import keys
from tokenwage.core.errors import InvalidInput, NotFound
from tokenwage.core.org import normalise_email
from tokenwage.storage.web_repo import Account, ApiTokenInfo, WebRepo
from tokenwage.web import passwords
from tokenwage.web.settings import WebSettings

_TOKENS = keys.SecretFormat("twa")
MAX_TOKEN_DAYS = 3660


def account(conn: Connection, email: str) -> Account:
    found = WebRepo(conn).account_by_email(normalise_email(email))
    if found is None:
        raise NotFound(f"no person with email {email!r}; see `tokenwage person list`")
    return found


def set_password(
    conn: Connection,
    email: str,
    password: str,
    *,
    actor: str,
    now: datetime,
    settings: WebSettings | None = None,
) -> Account:
    """Create or change a login; existing sessions of the person end. The hash has the
    argon2 parameters of ``settings`` (default: the ``TOKENWAGE_WEB_*`` environment)."""
    who = account(conn, email)
    password_hash = passwords.hash_password(password, settings)
    repo = WebRepo(conn)
    created = repo.set_password_hash(who.person_id, password_hash, now)
    repo.delete_sessions_of(who.person_id)
    action = "login.create" if created else "login.password_change"
    repo.audit(actor, action, {"person": who.email}, now)
    return who


def disable_login(conn: Connection, email: str, *, actor: str, now: datetime) -> Account:
    who = account(conn, email)
    repo = WebRepo(conn)
    repo.disable_login(who.person_id, now)
    repo.audit(actor, "login.disable", {"person": who.email}, now)
    return who


def authenticate(
    conn: Connection,
    email: str,
    password: str,
    now: datetime,
    settings: WebSettings | None = None,
) -> Account | None:
    """The account if ``email`` has an enabled login and ``password`` matches, else None.

    Unknown emails cost one argon2 verification too, so timing does not reveal them. A hash
    made with other argon2 parameters than ``settings``' is re-hashed with theirs.
    """
    try:
        cleaned = normalise_email(email)
    except InvalidInput:
        passwords.verify(None, password, settings)
        return None
    repo = WebRepo(conn)
    who = repo.account_by_email(cleaned)
    login = repo.login(who.person_id) if who else None
    usable = login is not None and login.disabled_utc is None
    found = login.password_hash if usable and login else None
    if not passwords.verify(found, password, settings):
        return None
    assert who is not None and login is not None
    if passwords.needs_rehash(login.password_hash, settings):
        repo.rehash(who.person_id, passwords.rehash(password, settings))
    repo.record_login(who.person_id, now)
    return who


# -- API tokens ---------------------------------------------------------------------------


def create_api_token(
    conn: Connection,
    email: str,
    name: str,
    *,
    actor: str,
    now: datetime,
    expires_days: int | None = None,
) -> tuple[ApiTokenInfo, str]:
    """A new token: its info and the raw secret (show it once; only its hash is kept)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("an API token needs a name of 1 to 100 characters (e.g. 'nightly')")
    if expires_days is not None and not 1 <= expires_days <= MAX_TOKEN_DAYS:
        raise InvalidInput(f"expires_days must be between 1 and {MAX_TOKEN_DAYS}")
    who = account(conn, email)
    raw, prefix = _TOKENS.generate()
    expires = now + timedelta(days=expires_days) if expires_days else None
    repo = WebRepo(conn)
    repo.add_api_token(
        person_id=who.person_id,
        name=name,
        prefix=prefix,
        secret_sha256=keys.digest(raw),
        now=now,
        expires_utc=expires,
    )
    repo.audit(actor, "api_token.create", {"person": who.email, "prefix": prefix}, now)
    return repo.api_token_by_prefix(prefix), raw


def revoke_api_token(
    conn: Connection, prefix_or_token: str, *, actor: str, now: datetime
) -> ApiTokenInfo:
    prefix = _TOKENS.prefix_of(prefix_or_token.strip()) or prefix_or_token.strip()
    repo = WebRepo(conn)
    info = repo.api_token_by_prefix(prefix)
    repo.revoke_api_token(info.id, now)
    repo.audit(actor, "api_token.revoke", {"person": info.email, "prefix": prefix}, now)
    return repo.api_token_by_prefix(prefix)


def list_api_tokens(conn: Connection, email: str | None = None) -> list[ApiTokenInfo]:
    person_id = account(conn, email).person_id if email else None
    return WebRepo(conn).list_api_tokens(person_id)


TOKEN_TOUCH_EVERY = timedelta(minutes=1)


def account_for_token(conn: Connection, raw: str, now: datetime) -> Account | None:
    """The owner of a live API token, or None (malformed, unknown, revoked, expired)."""
    if not _TOKENS.matches(raw):
        return None
    repo = WebRepo(conn)
    found = repo.api_token_by_digest(keys.digest(raw))
    if found is None:
        return None
    info, owner = found
    if not info.usable_at(now):
        return None
    login = repo.login(owner.person_id)
    if login is not None and login.disabled_utc is not None:
        return None  # a disabled login stops the person's tokens too
    last = info.last_used_utc
    if last is None or now - last >= TOKEN_TOUCH_EVERY:
        repo.touch_api_token(info.id, now)
    return owner
