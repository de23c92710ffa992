"""``/budgets`` (finance reads, admins change with a confirmation step and an audit entry)
and ``/ledger`` (verification on demand, monthly seals). On SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import html as htmllib
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text, update
from starlette.testclient import TestClient

from tests.web.conftest import Org_, sign_in
from tests.web.pages_data import credit, spend
from tokenwage.core.money import Money
from tokenwage.core.package import Period
from tokenwage.storage.db import Database
from tokenwage.storage.ledger_repo import LedgerRepo
from tokenwage.storage.org_repo import OrgRepo, person_account, pool_account
from tokenwage.storage.schema import audit_log, ledger_entries


def test_budgets_for_finance_read_only(client: TestClient, org: Org_) -> None:
    csrf = sign_in(client, "fay")
    page = client.get("/budgets")
    assert page.status_code == 200
    assert "read only" in page.text and "/budgets/preview" not in page.text
    assert "$100.00/month" in page.text  # every fixture package
    form = {"csrf_token": csrf, "kind": "grant", "target": "oli@acme.example", "amount": "5"}
    assert client.post("/budgets/preview", data=form).status_code == 403
    assert client.post("/budgets/apply", data=form).status_code == 403
    client.post("/logout", data={"csrf_token": csrf})
    sign_in(client, "max")
    assert client.get("/budgets").status_code == 403


def test_an_allowance_change_is_confirmed_then_audited(
    client: TestClient, db: Database, org: Org_
) -> None:
    csrf = sign_in(client, "ada")
    form = {"kind": "allowance", "target": org.emails["oli"], "amount": "250", "period": "week"}
    no_csrf = client.post("/budgets/preview", data=form)
    assert no_csrf.status_code == 403
    shown = client.post("/budgets/preview", data={**form, "csrf_token": csrf})
    assert shown.status_code == 200 and 'data-testid="confirm"' in shown.text
    assert "$100.00 per month (hard cap)" in shown.text
    assert "$250.00 per week (hard cap)" in shown.text
    with db.begin() as conn:  # nothing changed yet
        assert len(OrgRepo(conn).packages_for(org.ids["oli"])) == 1
    done = client.post("/budgets/apply", data={**form, "csrf_token": csrf})
    assert done.status_code == 303
    with db.begin() as conn:
        pkgs = OrgRepo(conn).packages_for(org.ids["oli"])
        entries = conn.execute(select(audit_log).where(audit_log.c.action == "budget.allowance"))
        (entry,) = list(entries)
    assert [p.allowance.period for p in pkgs] == [Period.MONTH, Period.WEEK]
    assert pkgs[1].allowance.amount == Money.parse(250) and pkgs[0].effective_to is not None
    assert pkgs[1].base_salary == pkgs[0].base_salary  # pay unchanged
    assert entry.actor == "ada@acme.example (web)" and "250" in entry.detail
    page = client.get(done.headers["location"])
    assert "$250.00 per week" in htmllib.unescape(page.text)
    again = client.post("/budgets/apply", data={**form, "csrf_token": csrf})
    assert again.status_code == 400 and "already changed today" in again.text


def test_grants_and_pools(client: TestClient, db: Database, org: Org_) -> None:
    csrf = sign_in(client, "ada")
    grant = {"kind": "grant", "target": org.emails["moe"], "amount": "75.50"}
    missing_reason = client.post("/budgets/apply", data={**grant, "csrf_token": csrf})
    assert missing_reason.status_code == 400 and "reason" in missing_reason.text
    grant["reason"] = "Spot award"
    assert client.post("/budgets/apply", data={**grant, "csrf_token": csrf}).status_code == 303
    top_up = {"kind": "grant", "target": "data", "to_team": "1", "amount": "300"}
    top_up["reason"] = "Crunch"
    assert client.post("/budgets/apply", data={**top_up, "csrf_token": csrf}).status_code == 303
    pool = {"kind": "pool", "target": "platform", "amount": "1500", "period": "month"}
    assert client.post("/budgets/apply", data={**pool, "csrf_token": csrf}).status_code == 303
    with db.begin() as conn:
        ledger = LedgerRepo(conn)
        assert ledger.balance(person_account(org.ids["moe"])) == Money.parse("75.50").nanousd
        assert ledger.balance(pool_account("data")) == Money.parse(300).nanousd
        (p,) = OrgRepo(conn).pools()
        actions = conn.execute(
            select(audit_log.c.action)
            .where(audit_log.c.action.like("budget.%"))
            .order_by(audit_log.c.id)
        ).scalars()
        assert list(actions) == ["budget.grant", "budget.grant", "budget.pool"]
    assert p.team_slug == "platform" and p.amount == Money.parse(1500)
    page = client.get("/budgets").text
    assert "Spot award" in page and "Crunch" in page and "$1,500.00/month" in page
    bad = client.post("/budgets/preview", data={**grant, "amount": "-5", "csrf_token": csrf})
    assert bad.status_code == 400 and "negative" in bad.text


def _expected_seal(db: Database, month_end: datetime) -> str:
    """Every chain's last hash recorded before ``month_end``, digested, computed directly."""
    with db.begin() as conn:
        rows = conn.execute(
            text(
                "SELECT a.key, e.seq, e.hash, e.recorded_utc FROM ledger_entries e"
                " JOIN accounts a ON a.id = e.account_id ORDER BY a.key, e.seq"
            )
        ).all()
    heads: dict[str, tuple[int, str]] = {}
    for key, seq, digest, recorded in rows:
        at = recorded if isinstance(recorded, datetime) else datetime.fromisoformat(recorded)
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        if at < month_end:
            heads[key] = (seq, digest)
    lines = sorted(f"{k} {s} {h}" for k, (s, h) in heads.items())
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


@pytest.fixture
def booked(db: Database, org: Org_) -> None:
    credit(db)
    spend(db, org.emails["moe"], n=2)


def test_ledger_verification_and_seals(
    client: TestClient, db: Database, org: Org_, booked: None
) -> None:
    csrf = sign_in(client, "fay")
    page = client.get("/ledger")
    assert page.status_code == 200 and "Not verified yet" in page.text
    assert client.post("/ledger/verify", data={"csrf_token": csrf}).status_code == 303
    page = client.get("/ledger")
    with db.begin() as conn:
        entries = LedgerRepo(conn).count_entries()
    assert f"{entries:,} entries in" in page.text and "Every chain holds" in page.text
    now = datetime.now(UTC)
    nxt = datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, tzinfo=UTC)
    seals = page.text.split('data-testid="seals"')[1]
    assert f"<td>{now:%Y-%m}</td>" in seals
    assert _expected_seal(db, nxt) in seals  # the fixture org's time zone is UTC


def test_tampering_shows_after_the_next_verification(
    client: TestClient, db: Database, org: Org_, booked: None
) -> None:
    csrf = sign_in(client, "ada")
    with db.begin() as conn:
        conn.execute(
            update(ledger_entries).where(ledger_entries.c.seq == 1).values(amount_nanousd=1)
        )
    client.post("/ledger/verify", data={"csrf_token": csrf})
    page = client.get("/ledger").text
    assert "Verification failed" in page and "broken" in page


def test_ledger_refuses_members_and_managers(client: TestClient, org: Org_) -> None:
    for short in ("oli", "max"):
        csrf = sign_in(client, short)
        assert client.get("/ledger").status_code == 403
        assert client.post("/ledger/verify", data={"csrf_token": csrf}).status_code == 403
        client.post("/logout", data={"csrf_token": csrf})
