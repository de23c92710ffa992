"""``/me`` and ``/people/{id}``: real numbers for the right viewers, refusals for the rest;
keys created once-shown and revoked with CSRF; sharing settings; statements; live numbers.
On SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from tests.web.conftest import Org_, sign_in
from tests.web.pages_data import credit, csrf_in, spend
from tokenwage.core import keys
from tokenwage.core.money import Money
from tokenwage.storage.db import Database
from tokenwage.storage.keys_repo import KeysRepo
from tokenwage.storage.ledger_repo import LedgerRepo
from tokenwage.storage.org_repo import person_account
from tokenwage.storage.schema import person_settings, virtual_keys
from tokenwage.web.pages import vendor

ALLOWANCE = Money.parse(100)  # the fixture's packages: $100 a month


@pytest.fixture
def used(db: Database, org: Org_) -> int:
    """Moe spent on 4 requests today (allowances credited first); the cost in nano-USD."""
    credit(db)
    return spend(db, org.emails["moe"], n=4).cost_nanousd


def test_my_page_shows_my_numbers(client: TestClient, db: Database, org: Org_, used: int) -> None:
    sign_in(client, "moe")
    page = client.get("/me")
    assert page.status_code == 200
    html = page.text
    with db.begin() as conn:
        balance = LedgerRepo(conn).balance(person_account(org.ids["moe"]))
    assert balance == ALLOWANCE.nanousd - used  # credited this month, then charged
    assert f'data-live-field="balance">{Money(balance).usd()}<' in html
    assert f'data-live-field="today">{Money(used).usd()}<' in html
    assert '"today_sub">4 requests<' in html
    assert html.count("openai/gpt-5-mini") >= 5  # the model table and four recent requests
    assert "850 ms" in html
    assert 'id="burn-data"' in html and 'id="by-day-data"' in html
    assert "/static/dashboard.js" in html and vendor.CHART_JS in html
    month = datetime.now(UTC).strftime("%Y-%m")
    assert f'href="/me/statements/{month}"' in html


def test_live_numbers_follow_new_requests(
    client: TestClient, db: Database, org: Org_, used: int
) -> None:
    sign_in(client, "moe")
    before = client.get("/me/live.json").json()
    assert before["fields"]["today"] == Money(used).usd()
    more = spend(db, org.emails["moe"], n=2, tag="later").cost_nanousd
    after = client.get("/me/live.json").json()
    assert after["fields"]["today"] == Money(used + more).usd()
    assert after["fields"]["today_sub"] == "6 requests"
    assert after["balance_nanousd"] == ALLOWANCE.nanousd - used - more


def test_work_at_night_is_worth_a_look(client: TestClient, db: Database, org: Org_) -> None:
    credit(db)
    today = datetime.now(UTC).date()
    night = datetime.combine(today - timedelta(days=today.weekday() + 7), time(23), UTC)
    cost = spend(db, org.emails["oli"], n=6, at=night).cost_nanousd  # a Monday, 22:59 UTC
    sign_in(client, "oli")
    html = client.get("/me").text
    assert "Worth a look" in html
    assert f"6 of the last 6 requests (100%, {Money(cost).usd()}) were outside 07:00" in html


def test_empty_page_guides_a_newcomer(client: TestClient, org: Org_) -> None:
    sign_in(client, "oli")
    html = client.get("/me").text
    assert "No usage yet" in html and "No keys yet" in html and "No requests yet" in html


def test_who_may_open_a_persons_page(client: TestClient, org: Org_, used: int) -> None:
    """Moe's manager, Moe's manager's manager and finance may; a member elsewhere may not,
    by any URL, and cannot tell whether someone exists."""
    for viewer in ("mia", "max", "fay"):
        csrf = sign_in(client, viewer)
        page = client.get(f"/people/{org.ids['moe']}")
        assert page.status_code == 200, viewer
        assert "Moe Member&#39;s tokens" in page.text and Money(used).usd() in page.text
        client.post("/logout", data={"csrf_token": csrf})
    sign_in(client, "oli")
    for path in ("", "/live.json", "/statements/2026-11"):
        r = client.get(f"/people/{org.ids['moe']}{path}")
        assert r.status_code == 403, path
        assert Money(used).usd() not in r.text
        assert client.get(f"/people/999999{path}").status_code == 403


def test_finance_gets_404_for_nobody(client: TestClient, org: Org_) -> None:
    sign_in(client, "fay")
    assert client.get("/people/999999").status_code == 404


def test_create_a_key_once_and_revoke_it(client: TestClient, db: Database, org: Org_) -> None:
    csrf = sign_in(client, "moe")
    refused = client.post("/me/keys", data={"name": "laptop"})
    assert refused.status_code == 403  # no CSRF token
    made = client.post("/me/keys", data={"name": "laptop", "csrf_token": csrf})
    assert made.status_code == 201
    m = re.search(r'data-testid="new-key">([^<]+)<', made.text)
    assert m
    raw = m.group(1)
    prefix = keys.prefix_of(raw)
    assert prefix is not None
    with db.begin() as conn:
        info = KeysRepo(conn).by_prefix(prefix)
        stored = conn.execute(
            select(virtual_keys.c.secret_sha256).where(virtual_keys.c.prefix == prefix)
        ).scalar_one()
    assert info.person_id == org.ids["moe"] and info.revoked_utc is None
    assert stored == keys.digest(raw) and raw not in client.get("/me").text  # shown once
    gone = client.post(f"/me/keys/{prefix}/revoke", data={"csrf_token": csrf})
    assert gone.status_code == 303
    with db.begin() as conn:
        assert KeysRepo(conn).by_prefix(prefix).revoked_utc is not None


def test_nobody_revokes_someone_elses_key(client: TestClient, db: Database, org: Org_) -> None:
    csrf = sign_in(client, "moe")
    made = client.post("/me/keys", data={"name": "laptop", "csrf_token": csrf})
    raw = re.search(r'data-testid="new-key">([^<]+)<', made.text)
    assert raw
    prefix = keys.prefix_of(raw.group(1))
    client.post("/logout", data={"csrf_token": csrf})
    csrf = sign_in(client, "oli")
    assert client.post(f"/me/keys/{prefix}/revoke", data={"csrf_token": csrf}).status_code == 404
    path = f"/people/{org.ids['moe']}/keys/{prefix}/revoke"
    assert client.post(path, data={"csrf_token": csrf}).status_code == 403
    with db.begin() as conn:
        assert KeysRepo(conn).by_prefix(str(prefix)).revoked_utc is None


def test_sharing_settings_are_saved(client: TestClient, db: Database, org: Org_) -> None:
    csrf = sign_in(client, "moe")
    form = {"csrf_token": csrf, "leaderboard_opt_in": "1", "leaderboard_alias": "Tokenmaxxer"}
    assert client.post("/me/settings", data=form).status_code == 303
    with db.begin() as conn:
        row = conn.execute(
            select(person_settings).where(person_settings.c.person_id == org.ids["moe"])
        ).one()
    assert row.leaderboard_opt_in == 1 and row.leaderboard_alias == "Tokenmaxxer"
    assert row.share_detail == 0 and row.leaderboard_show_name == 0
    assert "Sharing settings saved." in client.get("/me?saved=1").text
    too_long = {**form, "leaderboard_alias": "x" * 41}
    assert client.post("/me/settings", data=too_long).status_code == 400


def test_my_statement(client: TestClient, org: Org_, used: int) -> None:
    sign_in(client, "moe")
    month = datetime.now(UTC).strftime("%Y-%m")
    page = client.get(f"/me/statements/{month}")
    assert page.status_code == 200
    assert "Moe Member" in page.text and Money(used).usd() in page.text
    assert client.get("/me/statements/2026-13").status_code == 400
    assert client.get("/me/statements/november").status_code == 400


def test_an_admin_makes_a_key_for_someone(client: TestClient, org: Org_) -> None:
    csrf = sign_in(client, "ada")
    made = client.post(f"/people/{org.ids['oli']}/keys", data={"name": "ci", "csrf_token": csrf})
    assert made.status_code == 201 and 'data-testid="new-key"' in made.text
    csrf_max = csrf_in(made.text)
    assert csrf_max == csrf


def test_a_manager_may_not_make_keys_for_reports(client: TestClient, org: Org_) -> None:
    csrf = sign_in(client, "max")
    path = f"/people/{org.ids['moe']}/keys"
    assert client.post(path, data={"name": "x", "csrf_token": csrf}).status_code == 403


def test_the_chart_library_is_served_from_the_install(client: TestClient, org: Org_) -> None:
    sign_in(client, "moe")
    r = client.get(vendor.CHART_JS)
    installed = (vendor.assets_dir() / vendor.VENDOR_FILES["chart.umd.min.js"]).is_file()
    if installed:
        assert r.status_code == 200 and "Chart.js" in r.text[:400]
    else:
        assert r.status_code == 404 and "make assets" in r.text
    assert vendor.CHART_JS == "/static/vendor/chart.umd.min.js"
    assert client.get("/static/vendor/secrets.txt").status_code == 404
    assert client.get("/vendor/chart.umd.min.js").status_code == 404  # the old place
    assert client.get("/static/app.css").status_code == 200  # the mount still serves the rest


def test_a_missing_install_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="make assets"):
        vendor.vendor_file("chart.umd.min.js", tmp_path)
    target = tmp_path / vendor.VENDOR_FILES["chart.umd.min.js"]
    target.parent.mkdir(parents=True)
    target.write_text("/* Chart.js */")
    assert vendor.vendor_file("chart.umd.min.js", tmp_path) == target


def test_request_counts_read_as_english() -> None:
    from tokenwage.web.pages.common import requests_text

    assert [requests_text(n) for n in (0, 1, 2, 1234)] == [
        "0 requests",
        "1 request",
        "2 requests",
        "1,234 requests",
    ]


def test_the_api_reference_uses_the_installed_swagger_ui_not_a_cdn(
    client: TestClient, org: Org_
) -> None:
    page = client.get("/api/docs")
    assert page.status_code == 200 and "/openapi.json" in page.text
    assert "cdn." not in page.text and "https://" not in page.text.split("<body>")[0]
    for name, media in (("swagger-ui-bundle.js", "javascript"), ("swagger-ui.css", "css")):
        assert f"{vendor.URL_PREFIX}/{name}" in page.text
        served = client.get(f"{vendor.URL_PREFIX}/{name}")
        assert served.status_code == 200 and media in served.headers["content-type"]
    assert "/api/docs" not in client.get("/openapi.json").json()["paths"]
