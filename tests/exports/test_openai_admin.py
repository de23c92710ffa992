"""OpenAI Usage and Costs exports: exact parsing, clear problems, idempotent booking."""

from __future__ import annotations

from typing import Any

import pytest

from tokenwage.core.errors import BadFile
from tokenwage.core.imported import ChargeMode
from tokenwage.core.money import Money
from tokenwage.importers import openai_admin
from tokenwage.storage.db import Database

from .conftest import NOW, book, dumps, ledger_count, person_ids, stored

DAY1 = 1767225600  # 2026-01-01T00:00:00Z
DAY = 86400
OPEN = int(NOW.timestamp()) - 3600  # a bucket that has not ended at NOW


def result(**fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "object": "organization.usage.completions.result",
        "input_tokens": 0,
        "output_tokens": 0,
        "num_model_requests": 0,
        "project_id": None,
        "user_id": None,
        "api_key_id": None,
        "model": None,
        "batch": None,
    }
    return row | fields


def bucket(start: int, *results: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": "bucket",
        "start_time": start,
        "end_time": start + DAY,
        "results": list(results),
    }


def page(*buckets: dict[str, Any], more: bool = False) -> dict[str, Any]:
    return {
        "object": "page",
        "data": list(buckets),
        "has_more": more,
        "next_page": "AAAA" if more else None,
    }


USAGE = page(
    bucket(
        DAY1,
        result(
            api_key_id="key_ada",
            user_id="user-ada",
            project_id="proj_web",
            model="gpt-5",
            input_tokens=1000,
            input_cached_tokens=200,
            output_tokens=300,
            num_model_requests=4,
        ),
        result(
            api_key_id="key_svc",
            user_id="user-bob",
            model="gpt-4o-mini-2024-07-18",
            input_tokens=500,
            input_cache_write_tokens=100,
            output_tokens=50,
            num_model_requests=2,
            input_audio_tokens=7,
            a_field_from_the_future={"x": 1},
        ),
        result(
            api_key_id="key_eve",
            user_id="user-eve",
            model="o4-mini",
            input_tokens=800,
            output_tokens=900,
            num_model_requests=3,
        ),
        result(api_key_id="key_ada", model="gpt-5"),  # nothing used: left out
    ),
    bucket(
        DAY1 + DAY,
        result(
            api_key_id="key_ada",
            model="gpt-5",
            input_tokens=100,
            output_tokens=10,
            num_model_requests=1,
        ),
    ),
    bucket(
        OPEN,
        result(
            api_key_id="key_ada",
            model="gpt-5",
            input_tokens=5,
            output_tokens=5,
            num_model_requests=1,
        ),
    ),
)


def parse(doc: Any) -> list[Any]:
    return openai_admin.parse_usage(dumps(doc), "usage.json", complete_before=NOW)


def test_each_bucket_and_result_is_a_record_with_openai_tokens_normalised() -> None:
    records = parse(USAGE)
    assert len(records) == 4
    assert sum(r.usage.input_tokens for r in records) == 800 + 400 + 800 + 100
    assert sum(r.usage.cache_read_tokens for r in records) == 200
    assert sum(r.usage.cache_write_tokens for r in records) == 100
    assert sum(r.usage.output_tokens for r in records) == 1260
    assert sum(r.requests for r in records) == 10
    first = records[0]
    assert first.key.startswith("20260101T000000Z:")
    assert first.used_utc.isoformat() == "2026-01-01T12:00:00+00:00"
    assert [(i.kind.value, i.value) for i in first.identities] == [
        ("api_key", "key_ada"),
        ("provider_user", "user-ada"),
    ]
    assert first.project == "proj_web"
    assert records[1].extra["input_audio_tokens"] == "7"


def test_a_bucket_still_open_is_left_for_a_later_import() -> None:
    everything = openai_admin.parse_usage(dumps(USAGE), "usage.json")
    assert len(everything) == len(parse(USAGE)) + 1


def test_keys_are_stable_and_differ_by_group_values() -> None:
    keys = [r.key for r in parse(USAGE)]
    assert keys == [r.key for r in parse(USAGE)]
    assert len(set(keys)) == len(keys)


def test_an_array_of_pages_is_read_whole() -> None:
    first, second = page(*USAGE["data"][:1], more=True), page(*USAGE["data"][1:])
    assert [r.key for r in parse([first, second])] == [r.key for r in parse(USAGE)]


def test_bad_json_names_the_file_and_line() -> None:
    with pytest.raises(BadFile) as caught:
        openai_admin.parse_usage(b'{"data": [\n  {"start_time": 1,,}', "usage.json")
    assert caught.value.path == "usage.json"
    assert caught.value.problems[0].line == 2
    assert "not JSON" in str(caught.value)


def test_missing_fields_are_all_reported_with_their_json_path() -> None:
    doc = page(
        bucket(
            DAY1,
            {"output_tokens": 5, "num_model_requests": 1, "model": "gpt-5"},
            result(input_tokens=10, output_tokens=1, num_model_requests=1),
            result(
                model="gpt-5",
                input_tokens=10,
                input_cached_tokens=11,
                num_model_requests=1,
                output_tokens="many",
            ),
        )
    )
    with pytest.raises(BadFile) as caught:
        parse(doc)
    text = str(caught.value)
    assert "usage.json:at data[0].results[0].input_tokens: missing" in text
    assert "at data[0].results[1].model: missing: export the usage with group_by=model" in text
    assert "at data[0].results[2].output_tokens: expected a count of tokens, got 'many'" in text
    with pytest.raises(BadFile, match="expected an array, got missing"):
        parse({"object": "page"})


def test_import_attributes_by_api_key_then_user_and_counts_the_unmapped(org: Database) -> None:
    summary = book(org, parse(USAGE))
    assert (summary.new, summary.unattributed) == (4, 1)
    assert summary.unknown_identities == {"api_key:key_eve": 1, "provider_user:user-eve": 1}
    ids = person_ids(org)
    owners = sorted((r.model, r.person_id) for r in stored(org, "openai_usage"))
    assert owners == sorted(
        [
            ("gpt-5", ids["ada@acme.test"]),
            ("gpt-5", ids["ada@acme.test"]),
            ("gpt-4o-mini-2024-07-18", ids["bob@acme.test"]),
            ("o4-mini", None),
        ]
    )
    assert summary.charged > Money(0) and ledger_count(org) > 0


def test_importing_the_same_export_again_adds_nothing(org: Database) -> None:
    book(org, parse(USAGE))
    entries = ledger_count(org)
    again = book(org, parse(USAGE))
    assert (again.new, again.duplicates, again.charged) == (0, 4, Money(0))
    assert ledger_count(org) == entries
    assert len(stored(org)) == 4


def test_track_mode_books_records_and_debits_nothing(org: Database) -> None:
    summary = book(org, parse(USAGE), mode=ChargeMode.TRACK)
    assert summary.new == 4 and summary.tracked > Money(0)
    assert ledger_count(org) == 0
    assert {r.charge_mode for r in stored(org)} == {"track"}


COSTS = {
    "object": "page",
    "has_more": False,
    "next_page": None,
    "data": [
        {
            "object": "bucket",
            "start_time": DAY1,
            "end_time": DAY1 + DAY,
            "results": [
                {
                    "object": "organization.costs.result",
                    "amount": {"value": 0.06, "currency": "usd"},
                    "line_item": "gpt-5, input",
                    "project_id": "proj_web",
                },
                {
                    "object": "organization.costs.result",
                    "amount": {"value": 1.234567, "currency": "usd"},
                    "line_item": "gpt-5, output",
                    "project_id": "proj_web",
                },
                {
                    "object": "organization.costs.result",
                    "amount": {"value": 0, "currency": "usd"},
                    "line_item": "Image models",
                    "project_id": "proj_web",
                },
                {
                    "object": "organization.costs.result",
                    "amount": {"value": -0.5, "currency": "usd"},
                    "line_item": "credit",
                    "project_id": None,
                },
            ],
        },
    ],
}


def test_costs_are_cost_only_records_at_the_exact_reported_amount() -> None:
    records = openai_admin.parse_costs(dumps(COSTS), "costs.json", complete_before=NOW)
    assert [(r.model, r.reported_cost, r.usage.total_tokens) for r in records] == [
        ("gpt-5, input", Money.parse("0.06"), 0),
        ("gpt-5, output", Money.parse("1.234567"), 0),
    ]
    assert all(r.identities == () and r.project == "proj_web" for r in records)


def test_a_cost_in_another_currency_is_refused() -> None:
    doc = {
        "data": [
            {
                "start_time": DAY1,
                "end_time": DAY1 + DAY,
                "results": [{"amount": {"value": 1, "currency": "eur"}, "line_item": "x"}],
            }
        ]
    }
    with pytest.raises(BadFile, match="'eur' is not supported"):
        openai_admin.parse_costs(dumps(doc), "costs.json")


def test_cost_only_records_are_booked_at_their_reported_cost(org: Database) -> None:
    records = openai_admin.parse_costs(dumps(COSTS), "costs.json", complete_before=NOW)
    summary = book(org, records, mode=ChargeMode.TRACK)
    assert summary.tracked == Money.parse("1.294567")
    assert summary.unattributed == 2
