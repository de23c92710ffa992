"""Password hashing with argon2id, with the parameters of :class:`WebSettings`
(``TOKENWAGE_WEB_ARGON2_*``; default: argon2-cffi's, RFC 9106's low-memory profile).

Each function takes the settings to use; without them it reads ``TOKENWAGE_WEB_*`` from the
environment when called (the CLI's ``login set-password``), never at import.
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from tokenwage.core.errors import InvalidInput
from tokenwage.web.settings import WebSettings

MIN_LENGTH = 12
MAX_LENGTH = 1024  # argon2 takes any length; a bound keeps a sign-in cheap to refuse


@cache
def _hasher_for(time_cost: int, memory_cost: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)


def hasher(settings: WebSettings | None = None) -> PasswordHasher:
    """The argon2id hasher with the parameters ``settings`` (or the environment) name."""
    return _hasher_for(*(settings or WebSettings()).argon2_parameters)


@cache
def _dummy_hash(h: PasswordHasher) -> str:
    """Verified against when the email is unknown: a wrong email costs as long as a wrong
    password, so timing does not tell which emails have a login."""
    return h.hash("tokenwage: no such login")


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise InvalidInput(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise InvalidInput(f"a password may have at most {MAX_LENGTH} characters")


def hash_password(password: str, settings: WebSettings | None = None) -> str:
    check_strength(password)
    return hasher(settings).hash(password)


def verify(password_hash: str | None, password: str, settings: WebSettings | None = None) -> bool:
    """True if ``password`` matches; an unknown login (None) takes as long and is False."""
    if len(password) > MAX_LENGTH:
        return False
    h = hasher(settings)
    try:
        matched = h.verify(password_hash or _dummy_hash(h), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return matched and password_hash is not None


def needs_rehash(password_hash: str, settings: WebSettings | None = None) -> bool:
    """True when the hash was made with other parameters than today's; re-hash on sign-in."""
    return hasher(settings).check_needs_rehash(password_hash)


def rehash(password: str, settings: WebSettings | None = None) -> str:
    return hasher(settings).hash(password)
