"""The simulated organisation behind the fake admin endpoints (:mod:`.admin`).

A fixed cast per provider; what each member used in each UTC hour (or, for the Claude Code
report, each day) comes from ``blake2b(seed, hour, member, model)``, so any window gives the
same numbers on every run and hourly buckets add up to daily ones. Costs are derived from the
same usage at one made-up price (:func:`cost_usd`).
"""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal
from typing import Any

OPENAI_CAST = (
    {"project_id": "proj_web", "user_id": "user-ada", "api_key_id": "key_ada"},
    {"project_id": "proj_web", "user_id": "user-bob", "api_key_id": "key_bob"},
    {"project_id": "proj_data", "user_id": "user-eve", "api_key_id": "key_eve"},
)
OPENAI_MODELS = ("gpt-4o-mini-2024-07-18", "gpt-5", "o4-mini")
ANTHROPIC_CAST = (
    {"api_key_id": "apikey_ada", "workspace_id": "wrkspc_core", "account_id": "user_ada"},
    {"api_key_id": "apikey_bob", "workspace_id": "wrkspc_core", "account_id": "user_bob"},
    {"api_key_id": "apikey_eve", "workspace_id": "wrkspc_labs", "account_id": "user_eve"},
)
ANTHROPIC_MODELS = ("claude-sonnet-4-6", "claude-opus-4-6", "claude-haiku-4-5-20251001")
CLAUDE_CODE_ACTORS = (
    {"type": "user_actor", "email_address": "ada@acme.test"},
    {"type": "user_actor", "email_address": "bob@acme.test"},
    {"type": "user_actor", "email_address": "eve@contractor.test"},
    {"type": "api_actor", "api_key_name": "ci-bot"},
)
CURSOR_USERS = ("ada@acme.test", "bob@acme.test", "eve@contractor.test")
CURSOR_MODELS = ("claude-4-sonnet", "gpt-5", "gemini-2.5-pro")
_USD_MTOK = {"input": Decimal("1.25"), "cached": Decimal("0.125"), "output": Decimal(10)}


def _n(*parts: object) -> int:
    return int.from_bytes(hashlib.blake2b(repr(parts).encode(), digest_size=8).digest(), "big")


def openai_hour(seed: int, hour: int) -> list[dict[str, Any]]:
    rows = []
    for i, who in enumerate(OPENAI_CAST):
        for model in OPENAI_MODELS:
            n = _n(seed, "openai", hour, i, model)
            if n % 3:
                continue
            requests = 1 + n % 7
            prompt = requests * (300 + (n >> 8) % 1700)
            rows.append(
                {
                    **who,
                    "model": model,
                    "batch": False,
                    "service_tier": "default",
                    "num_model_requests": requests,
                    "input_tokens": prompt,
                    "input_cached_tokens": prompt // 4 if n % 2 else 0,
                    "output_tokens": requests * (80 + (n >> 20) % 600),
                }
            )
    return rows


def anthropic_hour(seed: int, hour: int) -> list[dict[str, Any]]:
    rows = []
    for i, who in enumerate(ANTHROPIC_CAST):
        for model in ANTHROPIC_MODELS:
            n = _n(seed, "anthropic", hour, i, model)
            if n % 3:
                continue
            rows.append(
                {
                    **who,
                    "model": model,
                    "service_tier": "standard",
                    "context_window": "0-200k",
                    "uncached_input_tokens": 50 + n % 900,
                    "cache_read_input_tokens": (n >> 10) % 20000,
                    "ephemeral_5m_input_tokens": (n >> 30) % 3000,
                    "ephemeral_1h_input_tokens": (n >> 40) % 2 * 1500,
                    "output_tokens": 100 + (n >> 50) % 2000,
                    "web_search_requests": n % 2,
                }
            )
    return rows


def cost_usd(prompt: int, cached: int, output: int) -> Decimal:
    """What ``prompt`` tokens (``cached`` of them from the cache) and ``output`` cost."""
    total = (prompt - cached) * _USD_MTOK["input"] + cached * _USD_MTOK["cached"]
    return (total + output * _USD_MTOK["output"]).scaleb(-6)


def claude_code_rows(seed: int, day: date) -> list[dict[str, Any]]:
    rows = []
    for i, actor in enumerate(CLAUDE_CODE_ACTORS):
        breakdown = []
        for model in ANTHROPIC_MODELS[:2]:
            n = _n(seed, "claude_code", day.isoformat(), i, model)
            if n % 4 == 0:
                continue
            tokens = {
                "input": 1000 + n % 50000,
                "output": 500 + (n >> 16) % 40000,
                "cache_read": (n >> 24) % 900000,
                "cache_creation": (n >> 44) % 60000,
            }
            cents = float(
                cost_usd(
                    tokens["input"] + tokens["cache_read"], tokens["cache_read"], tokens["output"]
                )
                .scaleb(2)
                .quantize(Decimal("0.01"))
            )
            breakdown.append(
                {
                    "model": model,
                    "tokens": tokens,
                    "estimated_cost": {"amount": cents, "currency": "USD"},
                }
            )
        if breakdown:
            rows.append(
                {
                    "date": day.isoformat(),
                    "actor": actor,
                    "organization_id": "org_mock",
                    "customer_type": "api",
                    "terminal_type": "vscode",
                    "core_metrics": {
                        "num_sessions": 1 + i,
                        "commits_by_claude_code": i,
                        "lines_of_code": {"added": 10 * i, "removed": i},
                        "pull_requests_by_claude_code": 0,
                    },
                    "model_breakdown": breakdown,
                    "tool_actions": {},
                }
            )
    return rows


def cursor_events_between(seed: int, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
    """Every simulated event with ``start_ms <= timestamp <= end_ms``, oldest first."""
    events = []
    for hour in range(start_ms // 3_600_000, end_ms // 3_600_000 + 1):
        for i, email in enumerate(CURSOR_USERS):
            n = _n(seed, "cursor", hour, i)
            at = hour * 3_600_000 + n % 3_600_000
            if n % 4 or not start_ms <= at <= end_ms:
                continue
            usage: dict[str, object] = {
                "inputTokens": 100 + n % 4000,
                "outputTokens": 50 + (n >> 12) % 3000,
                "cacheWriteTokens": (n >> 24) % 5000,
                "cacheReadTokens": (n >> 36) % 40000,
            }
            usage["totalCents"] = round(1 + (n >> 48) % 900 / 37, 4)
            events.append(
                {
                    "timestamp": str(at),
                    "model": CURSOR_MODELS[n % 3],
                    "kind": "Usage-based",
                    "maxMode": False,
                    "requestsCosts": 1,
                    "isTokenBasedCall": True,
                    "tokenUsage": usage,
                    "isFreeBugbot": False,
                    "userEmail": email,
                }
            )
    return events
