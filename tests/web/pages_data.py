"""Usage for the page tests: priced like real requests, written the way the gateway writes
them (usage records through ``record_usage``, debits on the person's ledger account)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tokenwage.core.package import CapMode
from tokenwage.core.pricing import Pricer, PricingPolicy
from tokenwage.core.spending import Funds
from tokenwage.core.usage import TokenUsage
from tokenwage.services import books
from tokenwage.storage.db import Database
from tokenwage.storage.ledger_repo import LedgerRepo
from tokenwage.storage.org_repo import OrgRepo
from tokenwage.storage.usage_rows import record_usage

PRICER = Pricer(PricingPolicy())
META_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


@dataclass(frozen=True)
class Spent:
    cost_nanousd: int
    requests: int
    input_tokens: int
    cache_read_tokens: int


def spend(
    db: Database,
    email: str,
    *,
    n: int,
    model: str = "gpt-5-mini",
    provider: str = "openai",
    input_tokens: int = 20_000,
    cache_read_tokens: int = 60_000,
    output_tokens: int = 2_000,
    at: datetime | None = None,
    tag: str = "r",
) -> Spent:
    """``n`` requests by ``email`` just before ``at`` (default now), charged and recorded."""
    at = at or datetime.now(UTC)
    usage = TokenUsage(
        input_tokens=input_tokens, output_tokens=output_tokens, cache_read_tokens=cache_read_tokens
    )
    total = 0
    with db.begin() as conn:
        person = OrgRepo(conn).get_person(email)
        assert person.id is not None
        funds = books.balances(conn, at, email=email)[0]
        rows = []
        drafts = []
        for i in range(n):
            used = at - timedelta(seconds=n - i)
            priced = PRICER.price(usage, provider, model, used)
            total += priced.cost.nanousd
            rid = f"{tag}-{person.id}-{i}-{used.timestamp()}"
            drafts += books.charge_usage(
                conn,
                person=person,
                usage=usage,
                provider=provider,
                model=model,
                used_utc=used,
                source="gateway",
                request_id=rid,
                pricer=PRICER,
                funds=Funds(own_balance=funds.balance, cap=CapMode.SOFT),
                now=used,
            )
            rows.append(
                {
                    "request_id": rid,
                    "person_id": person.id,
                    "key_id": None,
                    "source": "gateway",
                    "provider": provider,
                    "model": model,
                    **usage.counts(),
                    "cost_nanousd": priced.cost.nanousd,
                    "estimated": 0,
                    "stream": 0,
                    "status": 200,
                    "latency_ms": 850,
                    "used_utc": used,
                    "recorded_utc": used,
                }
            )
        LedgerRepo(conn).append(drafts, at)
        record_usage(conn, rows)
    return Spent(total, n, input_tokens * n, cache_read_tokens * n)


def credit(db: Database, now: datetime | None = None) -> None:
    """Credit every allowance period started so far."""
    with db.begin() as conn:
        books.run_allowances(conn, now or datetime.now(UTC))


def csrf_in(html: str) -> str:
    m = META_CSRF.search(html)
    assert m, "signed-in pages carry the CSRF token"
    return m.group(1)
