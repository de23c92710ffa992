"""Usage debits: how one priced usage becomes ledger entries.

The cost is split over the person's own account and their team pool
(:func:`tokenwage.core.spending.split_charge`); each part is a ``usage`` entry whose ref is
``usage:{source}:{request_id}:{own|pool}``, so the same request is never charged twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tokenwage.core.ledger import EntryDraft, EntryKind
from tokenwage.core.pricing import PricedUsage
from tokenwage.core.spending import Funds, split_charge
from tokenwage.core.usage import TokenUsage


def usage_meta(
    usage: TokenUsage, *, source: str, provider: str, model: str, request_id: str
) -> dict[str, Any]:
    return {
        "source": source,
        "provider": provider,
        "model": model,
        **usage.counts(),
        "request_id": request_id,
    }


def usage_drafts(
    priced: PricedUsage,
    usage: TokenUsage,
    funds: Funds,
    *,
    person_id: int,
    own_account: str,
    pool_account: str | None,
    provider: str,
    model: str,
    used_utc: datetime,
    source: str,
    request_id: str,
    extra_meta: dict[str, Any] | None = None,
) -> list[EntryDraft]:
    meta = usage_meta(usage, source=source, provider=provider, model=model, request_id=request_id)
    meta["price_source"] = priced.source
    if priced.flagged:
        meta["price_flagged"] = True
    if extra_meta:
        meta.update(extra_meta)
    drafts = []
    for part, amount in split_charge(priced.cost, funds):
        if part == "pool" and pool_account:
            account, part_meta = pool_account, {**meta, "person_id": person_id}
        else:
            account, part_meta = own_account, meta
        drafts.append(
            EntryDraft(
                account=account,
                kind=EntryKind.USAGE,
                amount_nanousd=-amount.nanousd,
                effective_utc=used_utc,
                ref=f"usage:{source}:{request_id}:{part}",
                memo=f"{provider}/{model}",
                meta=part_meta,
            )
        )
    return drafts
