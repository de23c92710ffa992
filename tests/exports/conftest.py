"""Provider-export fixtures: an organisation whose people are mapped to provider identities,
booking through the one booking path, and the mock provider on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from tokenwage.core.imported import ChargeMode, Identity, IdentityKind, ImportedUsage
from tokenwage.core.org import Org, Person, Team
from tokenwage.mock_upstream.testing import start_mock_upstream
from tokenwage.services.importing import ImportSummary, import_usage
from tokenwage.services.people import add_person, add_team
from tokenwage.services.pricing import pricer_for
from tokenwage.storage.db import Database
from tokenwage.storage.imports_repo import ImportsRepo
from tokenwage.storage.org_repo import OrgRepo
from tokenwage.storage.schema import ledger_entries, usage_records

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)

# Who is who at the providers (the mock upstream's cast uses the same ids).
MAPPED = (
    (IdentityKind.API_KEY, "key_ada", "ada@acme.test"),
    (IdentityKind.PROVIDER_USER, "user-bob", "bob@acme.test"),
    (IdentityKind.API_KEY, "apikey_ada", "ada@acme.test"),
    (IdentityKind.API_KEY, "apikey_bob", "bob@acme.test"),
    (IdentityKind.ACCOUNT, "acct-uuid-bob", "bob@acme.test"),
)


@pytest.fixture
def org(db: Database) -> Database:
    """Acme (UTC): Ada in team platform, Bob on his own, and their provider identities.
    Eve (``eve@contractor.test``, ``key_eve``, ``user-eve``) is nobody here."""
    with db.begin() as conn:
        OrgRepo(conn).save_org(Org("Acme", "UTC"))
        add_team(conn, Team("platform", "Platform"))
        ids = {
            "ada@acme.test": add_person(conn, Person("ada@acme.test", "Ada", "platform")),
            "bob@acme.test": add_person(conn, Person("bob@acme.test", "Bob")),
        }
        repo = ImportsRepo(conn)
        for kind, value, email in MAPPED:
            repo.add_identity(Identity(kind, value), ids[email], NOW)
    return db


def book(
    db: Database,
    records: Iterable[ImportedUsage],
    *,
    mode: ChargeMode = ChargeMode.CHARGE,
    now: datetime = NOW,
    dry_run: bool = False,
) -> ImportSummary:
    with db.begin() as conn:
        return import_usage(
            conn, list(records), mode=mode, pricer=pricer_for(conn), now=now, dry_run=dry_run
        )


def stored(db: Database, source: str | None = None) -> list[Any]:
    q = select(usage_records).order_by(usage_records.c.request_id)
    if source is not None:
        q = q.where(usage_records.c.source == source)
    with db.begin() as conn:
        return list(conn.execute(q))


def ledger_count(db: Database) -> int:
    with db.begin() as conn:
        return int(conn.execute(select(func.count()).select_from(ledger_entries)).scalar_one())


def person_ids(db: Database) -> dict[str, int]:
    with db.begin() as conn:
        return {p.email: p.id for p in OrgRepo(conn).list_people() if p.id is not None}


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    with start_mock_upstream() as base_url:
        yield base_url
