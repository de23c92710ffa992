"""Anthropic Messages usage, Cost and Claude Code reports: parsing and booking."""

from __future__ import annotations

from typing import Any

import pytest

from tokenwage.core.errors import BadFile
from tokenwage.core.imported import IdentityKind
from tokenwage.core.money import Money
from tokenwage.importers import anthropic_admin
from tokenwage.storage.db import Database

from .conftest import NOW, book, dumps, person_ids, stored


def row(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "uncached_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": 0,
        "server_tool_use": {"web_search_requests": 0},
        "api_key_id": None,
        "workspace_id": None,
        "model": None,
        "service_tier": None,
        "context_window": None,
    }
    return base | fields


def day(date: str, *results: dict[str, Any]) -> dict[str, Any]:
    return {
        "starting_at": f"{date}T00:00:00Z",
        "ending_at": f"{date[:8]}{int(date[8:]) + 1:02d}T00:00:00Z",
        "results": list(results),
    }


USAGE = {
    "data": [
        day(
            "2026-01-05",
            row(
                api_key_id="apikey_ada",
                workspace_id="wrkspc_core",
                model="claude-sonnet-4-6",
                uncached_input_tokens=1500,
                cache_read_input_tokens=200,
                cache_creation={
                    "ephemeral_5m_input_tokens": 500,
                    "ephemeral_1h_input_tokens": 1000,
                },
                output_tokens=500,
                server_tool_use={"web_search_requests": 10},
                inference_geo="us",
            ),
            row(
                api_key_id="apikey_eve",
                model="claude-opus-4-6",
                uncached_input_tokens=10,
                output_tokens=20,
            ),
        ),
        day(
            "2026-01-06",
            row(
                account_id="user_x",
                model="claude-haiku-4-5-20251001",
                uncached_input_tokens=7,
                output_tokens=3,
            ),
        ),
        day(
            "2026-03-20",
            row(
                api_key_id="apikey_ada",
                model="claude-sonnet-4-6",
                uncached_input_tokens=1,
                output_tokens=1,
            ),
        ),
    ],
    "has_more": False,
    "next_page": None,
}


def test_usage_rows_keep_anthropic_token_kinds_apart() -> None:
    records = anthropic_admin.parse_usage(dumps(USAGE), "messages.json", complete_before=NOW)
    assert len(records) == 3  # 2026-03-20 has not ended at NOW
    first = records[0]
    assert (first.usage.input_tokens, first.usage.cache_read_tokens) == (1500, 200)
    assert (first.usage.cache_write_tokens, first.usage.cache_write_1h_tokens) == (500, 1000)
    assert first.usage.output_tokens == 500
    assert first.project == "wrkspc_core"
    assert first.extra["web_search_requests"] == "10"
    assert records[2].identities[0].kind is IdentityKind.PROVIDER_USER
    assert sum(r.usage.total_tokens for r in records) == 3700 + 30 + 10


def test_a_usage_row_without_model_or_tokens_field_is_reported() -> None:
    doc = {
        "data": [
            day(
                "2026-01-05",
                {"output_tokens": 1, "model": "claude-opus-4-6"},
                row(uncached_input_tokens=3, output_tokens=1),
            )
        ]
    }
    with pytest.raises(BadFile) as caught:
        anthropic_admin.parse_usage(dumps(doc), "messages.json")
    text = str(caught.value)
    assert "at data[0].results[0].uncached_input_tokens: missing" in text
    assert "at data[0].results[1].model: missing: export the report with group_by[]=model" in text


def test_usage_is_attributed_by_api_key_and_reimport_adds_nothing(org: Database) -> None:
    records = anthropic_admin.parse_usage(dumps(USAGE), "messages.json", complete_before=NOW)
    summary = book(org, records)
    assert (summary.new, summary.unattributed) == (3, 2)
    assert summary.unknown_identities == {"api_key:apikey_eve": 1, "provider_user:user_x": 1}
    ada = person_ids(org)["ada@acme.test"]
    assert [r.person_id for r in stored(org) if r.model == "claude-sonnet-4-6"] == [ada]
    assert book(org, records).new == 0


COST = {
    "data": [
        {
            "starting_at": "2026-01-05T00:00:00Z",
            "ending_at": "2026-01-06T00:00:00Z",
            "results": [
                {
                    "amount": "123.45",
                    "currency": "USD",
                    "workspace_id": "wrkspc_core",
                    "description": "Claude Sonnet 4.6 Usage - Input Tokens",
                    "cost_type": "tokens",
                    "model": "claude-sonnet-4-6",
                    "token_type": "uncached_input_tokens",
                },
                {
                    "amount": "0.5",
                    "currency": "USD",
                    "workspace_id": None,
                    "description": "Web Search",
                    "cost_type": "web_search",
                    "model": None,
                },
                {"amount": "0", "currency": "USD", "description": "nothing"},
            ],
        }
    ],
    "has_more": False,
    "next_page": None,
}


def test_cost_amounts_are_cents_as_decimal_strings() -> None:
    records = anthropic_admin.parse_cost(dumps(COST), "cost.json", complete_before=NOW)
    assert [(r.model, r.reported_cost) for r in records] == [
        ("claude-sonnet-4-6", Money.parse("1.2345")),
        ("Web Search", Money.parse("0.005")),
    ]
    assert records[0].project == "wrkspc_core" and records[0].usage.total_tokens == 0


def claude_code_day(date: str) -> dict[str, Any]:
    return {
        "data": [
            {
                "date": date,
                "actor": {"type": "user_actor", "email_address": "Ada@Acme.test"},
                "organization_id": "org_1",
                "customer_type": "api",
                "terminal_type": "vscode",
                "core_metrics": {"num_sessions": 3},
                "tool_actions": {},
                "model_breakdown": [
                    {
                        "model": "claude-sonnet-4-6",
                        "tokens": {
                            "input": 100,
                            "output": 200,
                            "cache_read": 3000,
                            "cache_creation": 400,
                        },
                        "estimated_cost": {"amount": 186.5, "currency": "USD"},
                    },
                    {
                        "model": "claude-opus-4-6",
                        "tokens": {"input": 1, "output": 2, "cache_read": 0, "cache_creation": 0},
                        "estimated_cost": {"amount": 0.01, "currency": "USD"},
                    },
                ],
            },
            {
                "date": date,
                "actor": {"type": "api_actor", "api_key_name": "ci-bot"},
                "customer_type": "api",
                "terminal_type": "github",
                "model_breakdown": [
                    {
                        "model": "claude-sonnet-4-6",
                        "tokens": {"input": 5, "output": 5, "cache_read": 0, "cache_creation": 0},
                        "estimated_cost": {"amount": 1, "currency": "USD"},
                    }
                ],
            },
        ],
        "has_more": False,
        "next_page": None,
    }


def test_claude_code_report_is_one_record_per_engineer_day_and_model(org: Database) -> None:
    body = dumps([claude_code_day("2026-01-05"), claude_code_day("2026-03-20")])
    records = anthropic_admin.parse_claude_code(body, "cc.json", complete_before=NOW)
    assert len(records) == 3  # 2026-03-20 is not over at NOW
    sonnet = records[0]
    assert sonnet.usage.total_tokens == 3700 and sonnet.usage.cache_write_tokens == 400
    assert sonnet.reported_cost == Money.parse("1.865")
    assert sonnet.used_utc.isoformat() == "2026-01-05T12:00:00+00:00"
    summary = book(org, records)
    assert (summary.new, summary.unattributed) == (3, 1)  # e-mail matched case-blind
    assert summary.unknown_identities == {"api_key:ci-bot": 1}
    assert book(org, records).duplicates == 3


def test_claude_code_rows_need_an_actor_and_a_date() -> None:
    doc = {"data": [{"actor": {"type": "user_actor"}, "date": "05/01/2026", "model_breakdown": []}]}
    with pytest.raises(BadFile) as caught:
        anthropic_admin.parse_claude_code(dumps(doc), "cc.json")
    text = str(caught.value)
    assert "at data[0].date: expected a date like 2026-01-31, got '05/01/2026'" in text
    assert "at data[0].actor: has neither email_address nor api_key_name" in text
