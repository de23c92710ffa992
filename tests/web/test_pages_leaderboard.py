"""``/leaderboard``: opt-in only, names only when chosen, several metrics and periods."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from starlette.testclient import TestClient

from tests.web.conftest import Org_, sign_in
from tests.web.pages_data import credit, spend
from tokenwage.core.money import Money
from tokenwage.services.dashboard.me import SharingSettings, save_sharing_settings
from tokenwage.storage.db import Database


@pytest.fixture
def board(db: Database, org: Org_) -> dict[str, int]:
    """Moe (alias), Oli (named) and Mia (anonymous) opted in; Max spent most, not opted in."""
    credit(db)
    costs = {
        "moe": spend(db, org.emails["moe"], n=3).cost_nanousd,
        "oli": spend(db, org.emails["oli"], n=1, model="gpt-5").cost_nanousd,
        "mia": spend(db, org.emails["mia"], n=1).cost_nanousd,
        "max": spend(db, org.emails["max"], n=9, model="gpt-5").cost_nanousd,
    }
    now = datetime.now(UTC)
    with db.begin() as conn:
        for short, chosen in (
            ("moe", SharingSettings(True, "Cache Wizard")),
            ("oli", SharingSettings(True, "ignored when named", leaderboard_show_name=True)),
            ("mia", SharingSettings(True)),
        ):
            save_sharing_settings(conn, org.ids[short], chosen, now)
    return costs


def _names(html: str) -> list[str]:
    table = html.split('data-testid="leaderboard"')[1]
    return re.findall(r'<td class="num">\d+</td>\s*<td>([^<]+?)(?: <span|</td>)', table)


def test_only_people_who_opted_in_are_ranked(
    client: TestClient, org: Org_, board: dict[str, int]
) -> None:
    sign_in(client, "moe")
    page = client.get("/leaderboard?period=7d&metric=spend")
    assert page.status_code == 200
    expected = sorted(("moe", "oli", "mia"), key=lambda s: -board[s])
    shown = {"moe": "Cache Wizard", "oli": "Oli Other", "mia": "Engineer #1"}
    assert _names(page.text) == [shown[s] for s in expected]
    assert "Max Manager" not in page.text and Money(board["max"]).usd() not in page.text
    assert "Moe Member" not in page.text.split("<main")[1]  # an alias hides the name
    assert Money(board["moe"]).usd() in page.text
    assert 'class="you"' in page.text


def test_cost_per_request_ranks_cheapest_first(
    client: TestClient, org: Org_, board: dict[str, int]
) -> None:
    sign_in(client, "max")
    page = client.get("/leaderboard?period=month&metric=cost_per_request")
    assert page.status_code == 200
    per_request = {"moe": board["moe"] // 3, "oli": board["oli"], "mia": board["mia"]}
    order = sorted(per_request, key=lambda s: per_request[s])
    shown = {"moe": "Cache Wizard", "oli": "Oli Other", "mia": "Engineer #1"}
    names = _names(page.text)
    assert names[-1] == shown[order[-1]] == "Oli Other"  # gpt-5 costs most per request
    assert "You are not on the leaderboard" in page.text
    assert client.get("/leaderboard?metric=vibes").status_code == 400
    assert client.get("/leaderboard?period=forever").status_code == 400


def test_an_empty_leaderboard_explains_itself(client: TestClient, org: Org_) -> None:
    sign_in(client, "oli")
    page = client.get("/leaderboard")
    assert page.status_code == 200 and "Nobody has joined yet" in page.text
