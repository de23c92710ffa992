"""Grouped usage from the API reads ``usage_daily``: sums equal to the records, per local
day, month and model, filtered by source, team and dates, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from starlette.testclient import TestClient

from tests.web.conftest import Org_
from tests.web.test_api import add_usage, bearer
from tokenwage.storage.db import Database
from tokenwage.storage.schema import usage_daily, usage_records


def test_grouped_sums_equal_the_records(client: TestClient, db: Database, org: Org_) -> None:
    start = datetime(2026, 11, 30, 20, tzinfo=UTC)  # across a month's end
    add_usage(db, "moe", 12, start)
    add_usage(db, "oli", 2, start)
    finance = bearer(db, "fay")
    with db.begin() as conn:
        cost = conn.execute(select(func.sum(usage_records.c.cost_nanousd))).scalar()
    days = client.get("/api/v1/usage", params={"group": "day"}, headers=finance).json()
    assert [d["day"] for d in days["items"]] == ["2026-11-30", "2026-12-01"]
    assert [d["requests"] for d in days["items"]] == [6, 8]
    assert days["totals"]["cost_nanousd"] == cost and days["timezone"] == "UTC"
    months = client.get("/api/v1/usage", params={"group": "month"}, headers=finance).json()
    assert [(m["month"], m["requests"]) for m in months["items"]] == [
        ("2026-11", 6),
        ("2026-12", 8),
    ]
    assert months["totals"] == days["totals"]
    team = client.get(
        "/api/v1/usage", params={"group": "model", "team": "data"}, headers=finance
    ).json()
    assert team["totals"]["requests"] == 2 and team["items"][0]["model"].startswith("anthropic/")
    moe = org.ids["moe"]
    one_day = client.get(
        f"/api/v1/people/{moe}/usage",
        params={"since": "2026-12-01", "until": "2026-12-01", "source": "claude_code"},
        headers=finance,
    ).json()
    assert one_day["totals"]["requests"] == 8  # moe's four on 30 November left out
    other = client.get(
        f"/api/v1/people/{moe}/usage", params={"source": "gateway"}, headers=finance
    ).json()
    assert other["items"] == [] and other["totals"]["cost_nanousd"] == 0
    bad = client.get("/api/v1/usage?since=2026-12-02&until=2026-12-01", headers=finance)
    assert bad.status_code == 400 and "after" in bad.json()["error"]["message"]


def test_grouped_usage_reads_the_daily_sums(client: TestClient, db: Database, org: Org_) -> None:
    add_usage(db, "moe", 3, datetime.now(UTC) - timedelta(days=1))
    with db.begin() as conn:
        conn.execute(update(usage_daily).values(requests=usage_daily.c.requests + 100))
    moe = org.ids["moe"]
    r = client.get(f"/api/v1/people/{moe}/usage", headers=bearer(db, "moe")).json()
    assert r["totals"]["requests"] == 103  # summed from usage_daily, not usage_records
