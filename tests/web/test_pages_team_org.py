"""``/team`` and ``/org``: who may see them, and the numbers they show computed here
independently from what was spent and the packages. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from starlette.testclient import TestClient

from tests.web.conftest import Org_, sign_in
from tests.web.pages_data import credit, spend
from tokenwage.core.money import Money
from tokenwage.storage.db import Database

SALARY = Money.parse(150_000)


@pytest.fixture
def used(db: Database, org: Org_) -> dict[str, int]:
    credit(db)
    return {
        "moe": spend(db, org.emails["moe"], n=3).cost_nanousd,
        "mia": spend(db, org.emails["mia"], n=1, model="gpt-5").cost_nanousd,
        "oli": spend(db, org.emails["oli"], n=2).cost_nanousd,
    }


def test_a_manager_sees_their_reports(client: TestClient, org: Org_, used: dict[str, int]) -> None:
    sign_in(client, "max")
    page = client.get("/team")
    assert page.status_code == 200
    html = page.text
    assert "My reports" in html
    assert "Mia Member" in html and "Moe Member" in html  # direct and indirect reports
    assert "Oli Other" not in html and "Fay Finance" not in html
    total = used["moe"] + used["mia"]
    assert f'data-live-field="month">{Money(total).usd()}<' in html
    # each report: $100 credited this month, utilisation = spend / $100
    for short in ("moe", "mia"):
        share = round(used[short] / Money.parse(100).nanousd * 100)
        assert f"{Money(used[short]).usd()}</td>" in html
        assert f'<span class="num">{share}%</span>' in html
    live = client.get("/team/live.json").json()
    assert live["fields"]["month"] == Money(total).usd()
    assert client.get("/team?team=data").status_code == 403  # managers do not pick teams


def test_finance_and_admin_pick_any_team(
    client: TestClient, org: Org_, used: dict[str, int]
) -> None:
    for viewer in ("fay", "ada"):
        csrf = sign_in(client, viewer)
        page = client.get("/team?team=data")
        assert page.status_code == 200
        assert "Oli Other" in page.text and "Moe Member" not in page.text
        assert Money(used["oli"]).usd() in page.text
        assert client.get("/team?team=nope").status_code == 404
        client.post("/logout", data={"csrf_token": csrf})


def test_team_and_org_refuse_the_wrong_roles(client: TestClient, org: Org_) -> None:
    csrf = sign_in(client, "oli")
    for path in ("/team", "/team/live.json", "/org", "/org/live.json"):
        assert client.get(path).status_code == 403, path
    client.post("/logout", data={"csrf_token": csrf})
    sign_in(client, "max")
    assert client.get("/org").status_code == 403


def test_org_shows_spend_and_fully_loaded_cost(
    client: TestClient, org: Org_, used: dict[str, int]
) -> None:
    sign_in(client, "fay")
    page = client.get("/org?range=month")
    assert page.status_code == 200
    html = page.text
    platform = used["moe"] + used["mia"]
    assert f"{Money(platform).usd()}</td>" in html
    assert Money(sum(used.values())).usd() in html
    # fully loaded: salary accrues by the day; this month so far, in a 365- or 366-day year
    today = datetime.now(UTC).date()
    days = today.day
    year_days = 366 if (date(today.year, 12, 31) - date(today.year, 1, 1)).days == 365 else 365
    salary = SALARY.prorate(days, year_days)
    assert salary.usd() in html
    # committed: $100 per person credited on the 1st, six people; no pools
    assert f"{Money.parse(600).usd()}<" in html
    assert client.get("/org?range=decade").status_code == 400


def test_offer_comparison(client: TestClient, org: Org_) -> None:
    sign_in(client, "ada")
    query = (
        "o0_name=Lean&o0_salary=100000&o0_allowance=100&o0_period=month"
        "&o1_name=Rich&o1_salary=120000&o1_allowance=10&o1_period=workday&utilisation=50"
    )
    page = client.get(f"/org?{query}")
    assert page.status_code == 200
    table = page.text.split('data-testid="offers"')[1]
    # committed a year: salary + allowance x periods (12 months, 260 workdays)
    assert "$101,200.00" in table and "$122,600.00" in table
    # expected at 50%: half the allowance
    assert "$100,600.00" in table and "$121,300.00" in table
    assert "$20,700.00" in table  # Rich minus Lean, expected
    bad = client.get("/org?o0_salary=lots&o1_salary=1")
    assert bad.status_code == 200 and "not a dollar amount" in bad.text
