"""argon2id parameters come from ``TOKENWAGE_WEB_ARGON2_*`` (tests set cheap ones in
tests/conftest.py); unset, they are argon2-cffi's RFC 9106 low-memory profile, and a hash
made with other parameters is re-hashed with the current ones at sign-in."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from argon2 import extract_parameters
from argon2.profiles import RFC_9106_LOW_MEMORY
from pydantic import ValidationError
from sqlalchemy import select

from tests.conftest import CHEAP_ARGON2
from tests.web.conftest import PASSWORD, Org_, email
from tokenwage.storage.db import Database
from tokenwage.storage.schema import logins
from tokenwage.web import passwords
from tokenwage.web.accounts import authenticate
from tokenwage.web.settings import WebSettings


def stored_hash(db: Database, person_id: int) -> str:
    with db.begin() as conn:
        found: str = conn.execute(
            select(logins.c.password_hash).where(logins.c.person_id == person_id)
        ).scalar_one()
    return found


def test_the_suite_hashes_cheaply(db: Database, org: Org_) -> None:
    params = extract_parameters(stored_hash(db, org.ids["moe"]))
    assert (params.time_cost, params.memory_cost, params.parallelism) == (1, 8, 1)


def test_production_defaults_and_rehash_on_sign_in(
    db: Database, org: Org_, monkeypatch: pytest.MonkeyPatch
) -> None:
    cheap = stored_hash(db, org.ids["moe"])  # made by the org fixture, cheaply
    for name in CHEAP_ARGON2:
        monkeypatch.delenv(name)
    settings = WebSettings()
    p = RFC_9106_LOW_MEMORY
    assert settings.argon2_parameters == (p.time_cost, p.memory_cost, p.parallelism)
    assert passwords.needs_rehash(cheap)
    with db.begin() as conn:
        assert authenticate(conn, email("moe"), PASSWORD, datetime.now(UTC), settings)
    upgraded = stored_hash(db, org.ids["moe"])
    assert upgraded != cheap and extract_parameters(upgraded) == p
    assert not passwords.needs_rehash(upgraded, settings)
    with db.begin() as conn:  # the new hash still signs in
        assert authenticate(conn, email("moe"), PASSWORD, datetime.now(UTC), settings)
    assert stored_hash(db, org.ids["moe"]) == upgraded


def test_memory_must_cover_the_lanes() -> None:
    with pytest.raises(ValidationError, match="at least 8 per lane: 32"):
        WebSettings(argon2_memory_cost=16, argon2_parallelism=4)
