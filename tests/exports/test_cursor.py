"""Cursor usage events: e-mail attribution, model names, keys for id-less events."""

from __future__ import annotations

from typing import Any

import pytest

from tokenwage.core.errors import BadFile
from tokenwage.core.money import Money
from tokenwage.importers import cursor
from tokenwage.storage.db import Database

from .conftest import book, dumps, person_ids, stored

T0 = 1767600000000  # 2026-01-05T08:00:00Z in milliseconds


def event(at: int, email: str | None, model: str, **tokens: Any) -> dict[str, Any]:
    usage = {"inputTokens": 0, "outputTokens": 0, "cacheWriteTokens": 0, "cacheReadTokens": 0}
    usage |= tokens
    found: dict[str, Any] = {
        "timestamp": str(at),
        "model": model,
        "kind": "Usage-based",
        "maxMode": False,
        "requestsCosts": 1,
        "isTokenBasedCall": True,
        "tokenUsage": usage,
        "isFreeBugbot": False,
    }
    if email is not None:
        found["userEmail"] = email
    return found


EVENTS = {
    "totalUsageEventsCount": 6,
    "pagination": {
        "numPages": 1,
        "currentPage": 1,
        "pageSize": 10,
        "hasNextPage": False,
        "hasPreviousPage": False,
    },
    "usageEvents": [
        event(
            T0,
            "ada@acme.test",
            "claude-4.5-sonnet-thinking",
            inputTokens=126,
            outputTokens=450,
            cacheWriteTokens=6112,
            cacheReadTokens=11964,
            totalCents=20.18,
        ),
        event(T0 + 1, "bob@acme.test", "gpt-5", inputTokens=10, outputTokens=5, totalCents=0.5),
        event(T0 + 1, "bob@acme.test", "gpt-5", inputTokens=10, outputTokens=5, totalCents=0.5),
        event(T0 + 2, None, "gemini-2.5-pro", inputTokens=1, outputTokens=1),
        {
            **event(T0 + 3, "ada@acme.test", "gpt-5", inputTokens=9, outputTokens=9),
            "chargedCents": 3.25,
            "someNewField": [1, 2],
        },
        {**event(T0 + 4, "ada@acme.test", "auto"), "tokenUsage": None, "isTokenBasedCall": False},
    ],
    "period": {"startDate": T0, "endDate": T0 + 10},
}


def test_events_become_records_with_their_provider_and_cost() -> None:
    records = cursor.parse_events(dumps(EVENTS), "cursor.json")
    assert len(records) == 5  # the request-priced event has no tokens
    first = records[0]
    assert (first.provider, first.model) == ("anthropic", "claude-sonnet-4-5")
    assert first.extra["cursor_model"] == "claude-4.5-sonnet-thinking"
    assert first.usage.total_tokens == 126 + 450 + 6112 + 11964
    assert first.reported_cost == Money.parse("0.2018")
    assert first.used_utc.isoformat() == "2026-01-05T08:00:00+00:00"
    assert records[4].reported_cost == Money.parse("0.0325")  # chargedCents wins


def test_identical_events_get_their_own_keys_and_the_same_keys_next_time() -> None:
    records = cursor.parse_events(dumps(EVENTS), "cursor.json")
    keys = [r.key for r in records]
    assert len(set(keys)) == 5
    assert keys[1].removesuffix(":1") == keys[2].removesuffix(":2")
    assert keys == [r.key for r in cursor.parse_events(dumps(EVENTS), "cursor.json")]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("claude-4-sonnet", ("claude-sonnet-4", "anthropic")),
        ("claude-3.5-sonnet", ("claude-3-5-sonnet", "anthropic")),
        ("claude-4.1-opus", ("claude-opus-4-1", "anthropic")),
        ("o3", ("o3", "openai")),
        ("grok-code-fast-1", ("grok-code-fast-1", "x-ai")),
        ("composer-2.5", ("composer-2.5", "cursor")),
    ],
)
def test_model_names_are_mapped_to_the_provider_naming(raw: str, expected: tuple[str, str]) -> None:
    assert cursor.model_and_provider(raw) == expected


def test_events_are_attributed_by_email_and_reimport_adds_nothing(org: Database) -> None:
    records = cursor.parse_events(dumps(EVENTS), "cursor.json")
    summary = book(org, records)
    assert (summary.new, summary.unattributed) == (5, 1)
    ids = person_ids(org)
    assert sorted(r.person_id or 0 for r in stored(org)) == sorted(
        [ids["ada@acme.test"], ids["ada@acme.test"], ids["bob@acme.test"], ids["bob@acme.test"], 0]
    )
    assert book(org, records).duplicates == 5


def test_bad_events_are_reported_by_position() -> None:
    doc = {"usageEvents": [{"timestamp": "yesterday", "model": "gpt-5"}, {"timestamp": T0}]}
    with pytest.raises(BadFile) as caught:
        cursor.parse_events(dumps(doc), "cursor.json")
    text = str(caught.value)
    assert "at usageEvents[0].timestamp: expected Unix milliseconds, got 'yesterday'" in text
    assert "at usageEvents[1].model: missing" in text
