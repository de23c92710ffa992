"""The REST API on both databases: roles, every person-scoped route, money, pagination,
errors, audit entries, and the OpenAPI document."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import select
from starlette.routing import BaseRoute
from starlette.testclient import TestClient

from tests.web.conftest import Org_, email, sign_in
from tokenwage.core.imported import ChargeMode, Identity, IdentityKind, ImportedUsage
from tokenwage.core.pricing import Pricer, PricingPolicy
from tokenwage.core.usage import TokenUsage
from tokenwage.services import books
from tokenwage.services.importing import import_usage
from tokenwage.storage.db import Database
from tokenwage.storage.schema import audit_log
from tokenwage.web.accounts import create_api_token

MODEL = "claude-haiku-4-5"


def bearer(db: Database, short: str) -> dict[str, str]:
    with db.begin() as conn:
        _info, raw = create_api_token(
            conn, email(short), "tests", actor="tests", now=datetime.now(UTC)
        )
    return {"Authorization": f"Bearer {raw}"}


def add_usage(db: Database, short: str, n: int, start: datetime) -> None:
    records = [
        ImportedUsage(
            source="claude_code",
            key=f"{short}-{i}",
            used_utc=start + timedelta(hours=i),
            provider="anthropic",
            model=MODEL,
            usage=TokenUsage(input_tokens=1000 + i, output_tokens=200),
            identities=(Identity(IdentityKind.EMAIL, email(short)),),
        )
        for i in range(n)
    ]
    with db.begin() as conn:
        import_usage(
            conn,
            records,
            mode=ChargeMode.CHARGE,
            pricer=Pricer(PricingPolicy()),
            now=datetime.now(UTC),
        )


@pytest.fixture
def seeded(db: Database, org: Org_) -> Org_:
    """Allowances credited, usage for Moe and Oli, a key for each."""
    now = datetime.now(UTC)
    with db.begin() as conn:
        books.run_allowances(conn, now)
    add_usage(db, "moe", 5, now - timedelta(days=1))
    add_usage(db, "oli", 3, now - timedelta(days=1))
    return org


def all_routes(routes: Sequence[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route, including those of included routers (FastAPI wraps them)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from all_routes(inner.routes)
        else:
            yield route


def person_routes(app: FastAPI) -> list[APIRoute]:
    return [
        r
        for r in all_routes(app.routes)
        if isinstance(r, APIRoute) and r.path.startswith("/api/") and "{person_id}" in r.path
    ]


def fill(path: str, person_id: int) -> str:
    return (
        path.replace("{person_id}", str(person_id))
        .replace("{month}", datetime.now(UTC).strftime("%Y-%m"))
        .replace("{prefix}", "twk_00000000")
    )


BODIES: dict[str, dict[str, Any]] = {
    "POST": {"name": "k"},
    "PUT": {"effective_from": "2030-01-01", "base_salary_usd": "1", "allowance_usd": "1"},
    "PATCH": {"name": "Renamed"},
    "DELETE": {},
}


def call(client: TestClient, method: str, url: str, headers: dict[str, str]) -> Any:
    if method in ("GET", "DELETE"):
        return client.request(method, url, headers=headers)
    return client.request(method, url, json=BODIES[method], headers=headers)


def test_a_member_reaches_nobody_else_by_any_api_url(
    app: FastAPI, client: TestClient, db: Database, seeded: Org_
) -> None:
    routes = person_routes(app)
    paths = {r.path for r in routes}
    for expected in ("usage", "usage/records", "balance", "statements/{month}", "keys", "packages"):
        assert f"/api/v1/people/{{person_id}}/{expected}" in paths
    member = bearer(db, "moe")
    others = [seeded.ids["oli"], seeded.ids["mia"], seeded.ids["ada"], 999_999]
    checked = 0
    for route in routes:
        for method in sorted(route.methods or ()):
            for other in others:
                r = call(client, method, fill(route.path, other), member)
                assert r.status_code in (403, 404), (method, route.path, other, r.text)
                assert r.json()["error"]["type"] in ("forbidden", "not_found")
                checked += 1
    assert checked >= 4 * 10
    # the same with the browser's session cookie (and its CSRF token on changes)
    csrf = sign_in(client, "moe")
    for route in routes:
        for method in sorted(route.methods or ()):
            r = call(client, method, fill(route.path, seeded.ids["oli"]), {"X-CSRF-Token": csrf})
            assert r.status_code in (403, 404), (method, route.path, r.text)
    # and the member's own data is there
    own = seeded.ids["moe"]
    for path in ("usage", "usage/records", "balance", "keys", "packages"):
        assert client.get(f"/api/v1/people/{own}/{path}", headers=member).status_code == 200
        assert client.get(f"/api/v1/people/{own}/{path}").status_code == 200  # by cookie


def test_lists_only_show_whom_the_caller_may_see(
    client: TestClient, db: Database, seeded: Org_
) -> None:
    def emails(short: str) -> set[str]:
        r = client.get("/api/v1/people", headers=bearer(db, short))
        return {p["email"] for p in r.json()["items"]}

    assert emails("moe") == {email("moe")}
    assert emails("max") == {email("max"), email("mia"), email("moe")}  # reports, indirect too
    assert emails("fay") == set(seeded.emails.values())
    balances = client.get("/api/v1/balances", headers=bearer(db, "mia")).json()["items"]
    assert {b["email"] for b in balances} == {email("mia"), email("moe")}


def test_manager_sees_reports_usage_but_not_their_pay_or_keys(
    client: TestClient, db: Database, seeded: Org_
) -> None:
    manager = bearer(db, "max")
    moe, oli = seeded.ids["moe"], seeded.ids["oli"]
    usage = client.get(f"/api/v1/people/{moe}/usage", headers=manager)
    assert usage.status_code == 200 and usage.json()["totals"]["requests"] == 5
    assert client.get(f"/api/v1/people/{moe}/balance", headers=manager).status_code == 200
    assert client.get(f"/api/v1/people/{moe}/packages", headers=manager).status_code == 403
    assert client.get(f"/api/v1/people/{moe}/keys", headers=manager).status_code == 403
    assert client.get(f"/api/v1/people/{oli}/usage", headers=manager).status_code == 403
    assert client.get("/api/v1/usage", headers=manager).status_code == 403


def test_finance_sees_all_money_but_edits_nothing(
    client: TestClient, db: Database, seeded: Org_
) -> None:
    finance = bearer(db, "fay")
    oli = seeded.ids["oli"]
    pkgs = client.get(f"/api/v1/people/{oli}/packages", headers=finance).json()["items"]
    assert pkgs[0]["base_salary_nanousd"] == 150_000 * 10**9
    assert pkgs[0]["base_salary_usd"] == "150000.00"
    org = client.get("/api/v1/usage", params={"group": "model"}, headers=finance).json()
    assert org["totals"]["requests"] == 8 and org["items"][0]["model"].endswith(MODEL)
    assert client.get("/api/v1/ledger/verify", headers=finance).json()["ok"] is True
    put = client.put(
        f"/api/v1/people/{oli}/package",
        json={"effective_from": "2030-01-01", "base_salary_usd": "1", "allowance_usd": "1"},
        headers=finance,
    )
    assert put.status_code == 403 and "admin" in put.json()["error"]["message"]
    grant = {"person_id": oli, "amount_usd": "5", "reason": "x"}
    assert client.post("/api/v1/grants", json=grant, headers=finance).status_code == 403
    assert client.get("/api/v1/ledger/verify", headers=bearer(db, "moe")).status_code == 403


def test_admin_edits_and_every_change_is_audited(
    client: TestClient, db: Database, seeded: Org_
) -> None:
    admin = bearer(db, "ada")
    oli = seeded.ids["oli"]
    before = client.get(f"/api/v1/people/{oli}/balance", headers=admin).json()
    grant = client.post(
        "/api/v1/grants",
        json={"person_id": oli, "amount_usd": "1.5", "reason": "spot award"},
        headers=admin,
    )
    assert grant.status_code == 201, grant.text
    assert grant.json()["amount_nanousd"] == 1_500_000_000
    assert grant.json()["amount_usd"] == "1.50"
    after = client.get(f"/api/v1/people/{oli}/balance", headers=admin).json()
    assert after["balance_nanousd"] - before["balance_nanousd"] == 1_500_000_000
    assert Decimal(after["balance_usd"]) * 10**9 == after["balance_nanousd"]
    assert isinstance(after["balance_nanousd"], int)
    package = {
        "effective_from": "2030-01-01",
        "base_salary_usd": "160000",
        "allowance_usd": "250.25",
        "allowance_period": "week",
        "supersede": True,
    }
    put = client.put(f"/api/v1/people/{oli}/package", json=package, headers=admin)
    assert put.status_code == 201, put.text
    assert put.json()["allowance_nanousd"] == 250_250_000_000
    again = client.put(f"/api/v1/people/{oli}/package", json=package, headers=admin)
    assert again.status_code == 409 and again.json()["error"]["type"] == "conflict"
    float_money = client.put(
        f"/api/v1/people/{oli}/package", json={**package, "allowance_usd": 1.5}, headers=admin
    )
    assert float_money.status_code == 422
    patch = client.patch(
        f"/api/v1/people/{oli}", json={"role": "manager", "team": "platform"}, headers=admin
    )
    assert patch.status_code == 200 and patch.json()["role"] == "manager"
    loop = client.patch(
        f"/api/v1/people/{seeded.ids['max']}", json={"manager_email": email("moe")}, headers=admin
    )
    assert loop.status_code == 400 and "loop" in loop.json()["error"]["message"]
    created = client.post(
        "/api/v1/people", json={"email": "new@acme.example", "name": "New"}, headers=admin
    )
    assert created.status_code == 201
    dup = client.post(
        "/api/v1/people", json={"email": "new@acme.example", "name": "New"}, headers=admin
    )
    assert dup.status_code == 409
    team = client.post("/api/v1/teams", json={"slug": "ml", "name": "ML"}, headers=admin)
    assert team.status_code == 201
    with db.begin() as conn:
        actions = [r.action for r in conn.execute(select(audit_log).order_by(audit_log.c.id))]
    for action in ("grant", "package.set", "person.update", "person.create", "team.create"):
        assert action in actions, actions


def test_keys_own_or_admin_secret_once_and_paginated(
    client: TestClient, db: Database, seeded: Org_
) -> None:
    member = bearer(db, "moe")
    moe = seeded.ids["moe"]
    created = [
        client.post(f"/api/v1/people/{moe}/keys", json={"name": f"k{i}"}, headers=member)
        for i in range(5)
    ]
    assert all(r.status_code == 201 for r in created)
    secret = created[0].json()["secret"]
    assert re.fullmatch(r"twk_[0-9a-f]{8}_[A-Za-z0-9_-]{43}", secret)
    seen: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"/api/v1/people/{moe}/keys", params=params, headers=member).json()
        seen += page["items"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len({k["prefix"] for k in seen}) == 5
    assert all("secret" not in k for k in seen)
    prefix = created[0].json()["prefix"]
    admin = bearer(db, "ada")
    revoked = client.delete(f"/api/v1/people/{moe}/keys/{prefix}", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["active"] is False
    oli = seeded.ids["oli"]
    wrong_owner = client.delete(f"/api/v1/people/{oli}/keys/{prefix}", headers=admin)
    assert wrong_owner.status_code == 404
    bad = client.get(f"/api/v1/people/{moe}/keys", params={"cursor": "!!"}, headers=member)
    assert bad.status_code == 400 and "cursor" in bad.json()["error"]["message"]
    too_many = client.get(f"/api/v1/people/{moe}/keys", params={"limit": 501}, headers=member)
    assert too_many.status_code == 422 and too_many.json()["error"]["type"] == "invalid_input"
    with db.begin() as conn:
        actions = [r.action for r in conn.execute(select(audit_log))]
    assert actions.count("key.create") == 5 and actions.count("key.revoke") == 1


def test_usage_records_page_newest_first(client: TestClient, db: Database, seeded: Org_) -> None:
    member = bearer(db, "moe")
    moe = seeded.ids["moe"]
    first = client.get(f"/api/v1/people/{moe}/usage/records?limit=3", headers=member).json()
    second = client.get(
        f"/api/v1/people/{moe}/usage/records",
        params={"limit": 3, "cursor": first["next_cursor"]},
        headers=member,
    ).json()
    rows = first["items"] + second["items"]
    assert len(rows) == 5 and second["next_cursor"] is None
    times = [r["used_utc"] for r in rows]
    assert times == sorted(times, reverse=True)
    assert all(isinstance(r["cost_nanousd"], int) and r["cost_nanousd"] > 0 for r in rows)
    daily = client.get(f"/api/v1/people/{moe}/usage?group=day", headers=member).json()
    total = sum(r["cost_nanousd"] for r in rows)
    assert daily["totals"]["cost_nanousd"] == total
    assert sum(r["cost_nanousd"] for r in daily["items"]) == total


def test_statement_as_json_and_html(client: TestClient, db: Database, seeded: Org_) -> None:
    member = bearer(db, "moe")
    moe = seeded.ids["moe"]
    month = datetime.now(UTC).strftime("%Y-%m")
    st = client.get(f"/api/v1/people/{moe}/statements/{month}", headers=member)
    assert st.status_code == 200 and st.headers["content-type"].startswith("application/json")
    assert email("moe") in st.text
    html = client.get(
        f"/api/v1/people/{moe}/statements/{month}", params={"format": "html"}, headers=member
    )
    assert html.status_code == 200 and html.text.lstrip().lower().startswith("<!doctype html")
    bad = client.get(f"/api/v1/people/{moe}/statements/2026-13", headers=member)
    assert bad.status_code == 400 and "2026-11" in bad.json()["error"]["message"]


def test_openapi_lists_the_api_and_no_pages(client: TestClient) -> None:
    r = client.get("/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    spec = r.json()
    assert spec["openapi"].startswith("3.")
    paths = set(spec["paths"])
    assert all(p.startswith("/api/v1/") for p in paths), paths
    for expected in (
        "/api/v1/people",
        "/api/v1/people/{person_id}/usage",
        "/api/v1/people/{person_id}/keys/{prefix}",
        "/api/v1/grants",
        "/api/v1/ledger/verify",
        "/api/v1/api-tokens",
    ):
        assert expected in paths


def test_a_bug_is_a_json_500_without_details(app: FastAPI, db: Database, org: Org_) -> None:
    def boom() -> None:
        raise RuntimeError("secret internals")

    app.add_api_route("/api/v1/boom", boom)
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/api/v1/boom", headers=bearer(db, "moe"))
    assert r.status_code == 500 and r.json()["error"]["type"] == "internal"
    assert "secret" not in r.text
