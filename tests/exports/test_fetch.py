"""Live fetch from the mock provider's admin endpoints over loopback: paging, auth, faults."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from tokenwage.core.errors import InvalidInput, Unauthenticated
from tokenwage.core.imported import ImportedUsage
from tokenwage.importers import fetch
from tokenwage.mock_upstream import MockConfig
from tokenwage.mock_upstream.admin_data import CURSOR_USERS, cursor_events_between
from tokenwage.mock_upstream.testing import start_mock_upstream
from tokenwage.storage.db import Database

from .conftest import NOW, book, person_ids, stored

SINCE = datetime(2026, 1, 1, tzinfo=UTC)
UNTIL = datetime(2026, 1, 8, tzinfo=UTC)
REPORTS = [
    fetch.openai_usage,
    fetch.openai_costs,
    fetch.anthropic_usage,
    fetch.anthropic_cost,
    fetch.claude_code_report,
    fetch.cursor_events,
]


def signature(records: list[ImportedUsage]) -> list[tuple[object, ...]]:
    return sorted((r.key, r.usage, r.reported_cost, r.identities) for r in records)


@pytest.mark.parametrize("report", REPORTS, ids=lambda f: f.__name__)
def test_small_pages_give_the_same_records_as_one_big_page(
    report: Callable[..., fetch.Fetched], mock_url: str
) -> None:
    whole = report(fetch.AdminApi(mock_url, "sk-admin"), SINCE, UNTIL, NOW)
    paged = report(fetch.AdminApi(mock_url, "sk-admin", page_size=2), SINCE, UNTIL, NOW)
    assert whole.records and signature(paged.records) == signature(whole.records)
    assert paged.pages > whole.pages >= 1
    assert all(r.used_utc < UNTIL for r in whole.records)


def test_usage_and_costs_tell_the_same_story(mock_url: str) -> None:
    api = fetch.AdminApi(mock_url, "sk-admin")
    usage = fetch.openai_usage(api, SINCE, UNTIL, NOW).records
    costs = fetch.openai_costs(api, SINCE, UNTIL, NOW).records
    assert {r.project for r in usage} == {r.project for r in costs} == {"proj_web", "proj_data"}
    assert {r.model.split(",")[0] for r in costs} == {r.model for r in usage}


def test_buckets_not_over_at_now_are_left_out(mock_url: str) -> None:
    api = fetch.AdminApi(mock_url, "sk-admin")
    now = datetime(2026, 1, 7, 12, tzinfo=UTC)
    records = fetch.anthropic_usage(api, SINCE, UNTIL, now).records
    assert max(r.used_utc for r in records).date().isoformat() == "2026-01-06"


def test_cursor_windows_longer_than_30_days_are_split(mock_url: str) -> None:
    until = SINCE + timedelta(days=45)
    got = fetch.cursor_events(fetch.AdminApi(mock_url, "key", page_size=1000), SINCE, until, NOW)
    expected = cursor_events_between(
        0, int(SINCE.timestamp() * 1000), int(until.timestamp() * 1000) - 1
    )
    assert got.pages == 2
    assert len(got.records) == len(expected) > 100
    assert {i.value for r in got.records for i in r.identities} == set(CURSOR_USERS)


def test_fetched_usage_is_attributed_and_refetching_adds_nothing(
    org: Database, mock_url: str
) -> None:
    api = fetch.AdminApi(mock_url, "sk-admin")
    records = fetch.openai_usage(api, SINCE, UNTIL, NOW).records
    summary = book(org, records)
    eve = sum(1 for r in records if r.identities[0].value == "key_eve")
    assert summary.new == len(records) and summary.unattributed == eve > 0
    ids = person_ids(org)
    owners = {r.person_id for r in stored(org)}
    assert owners == {ids["ada@acme.test"], ids["bob@acme.test"], None}  # bob by his user id
    assert book(org, fetch.openai_usage(api, SINCE, UNTIL, NOW).records).new == 0


def test_a_refused_key_is_unauthenticated() -> None:
    with start_mock_upstream(MockConfig(expected_api_key="sk-admin-right")) as url:
        with pytest.raises(Unauthenticated, match="refused the admin key .HTTP 401"):
            fetch.openai_usage(fetch.AdminApi(url, "sk-admin-wrong"), SINCE, UNTIL, NOW)
        with pytest.raises(Unauthenticated, match="invalid API key"):
            fetch.cursor_events(fetch.AdminApi(url, "wrong"), SINCE, UNTIL, NOW)
        ok = fetch.anthropic_cost(fetch.AdminApi(url, "sk-admin-right"), SINCE, UNTIL, NOW)
        assert ok.records


def test_a_bad_request_shows_the_providers_message(mock_url: str) -> None:
    api = fetch.AdminApi(mock_url, "sk-admin", page_size=400)
    with pytest.raises(InvalidInput, match="HTTP 400: limit must be between 1 and 31"):
        fetch.openai_usage(api, SINCE, UNTIL, NOW)


def test_failures_are_retried_with_backoff_then_reported() -> None:
    sleeps: list[float] = []
    with start_mock_upstream(MockConfig(error_rate=1.0, seed=3)) as url:
        api = fetch.AdminApi(url, "sk-admin", retries=3, sleep=sleeps.append)
        with pytest.raises(fetch.AdminApiUnavailable, match="failed 4 times; last: HTTP"):
            fetch.anthropic_usage(api, SINCE, UNTIL, NOW)
    assert len(sleeps) == 3 and all(0 < s <= 30 for s in sleeps)


def test_occasional_failures_do_not_change_the_result() -> None:
    with start_mock_upstream(MockConfig(seed=11)) as url:  # the seed also seeds the data
        clean = fetch.openai_usage(fetch.AdminApi(url, "k", page_size=1), SINCE, UNTIL, NOW)
    sleeps: list[float] = []
    with start_mock_upstream(MockConfig(error_rate=0.4, seed=11)) as url:
        api = fetch.AdminApi(url, "k", page_size=1, retries=8, sleep=sleeps.append)
        flaky = fetch.openai_usage(api, SINCE, UNTIL, NOW)
    assert sleeps, "the seeded faults should have struck at least once"
    assert signature(flaky.records) == signature(clean.records)


def test_an_admin_key_and_an_http_url_are_required() -> None:
    with pytest.raises(InvalidInput, match="--admin-key"):
        fetch.AdminApi("https://api.openai.com", " ")
    with pytest.raises(InvalidInput, match="must start with http"):
        fetch.AdminApi("api.openai.com", "k")
