"""Book imported usage: attribute, deduplicate, price, record and (in charge mode) debit.

Every importer ends here, in the caller's one transaction:

1. **Deduplicate.** A record whose ``source:key`` is already in ``usage_records`` is
   skipped, so re-importing the same files or exports adds nothing. A record whose provider
   message id or request id is already booked is skipped too, whichever source booked it
   (the same Claude Code request from its transcript and from OTLP counts once); if the
   gateway metered it, it was charged when it passed through.
2. **Attribute.** The record's identities (email, provider user id, API key id, hostname,
   account id) are tried in order against the ``identities`` table and people's emails; a
   record that maps to nobody is booked to the ``unattributed`` account and counted.
3. **Price** with the organisation's rules. An unknown model that the rules reject stops
   the whole import with the list of unknown models (nothing is written): add a price
   override and run it again.
4. **Record** one usage record per event, and in ``charge`` mode debit the ledger: one
   entry per person, source, day and model of this run (own allowance first, then team
   pool), so a million log lines do not become a million ledger entries. In ``track`` mode
   nothing is debited.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any

from sqlalchemy import Connection, or_, select

from tokenwage.core.charges import usage_drafts
from tokenwage.core.errors import UnknownModelPrice
from tokenwage.core.imported import ChargeMode, Identity, IdentityKind, ImportedUsage
from tokenwage.core.ledger import EntryDraft, EntryKind
from tokenwage.core.money import Money
from tokenwage.core.org import zone
from tokenwage.core.periods import local_date
from tokenwage.core.pricing import PricedUsage, Pricer
from tokenwage.core.spending import Funds
from tokenwage.core.usage import TokenUsage
from tokenwage.storage.bulk import existing
from tokenwage.storage.ledger_repo import LedgerRepo
from tokenwage.storage.org_repo import UNATTRIBUTED, OrgRepo, person_account, pool_account
from tokenwage.storage.schema import identities, people, usage_records
from tokenwage.storage.usage_rows import record_usage

BATCH = 5000


@dataclass
class ImportSummary:
    read: int = 0
    new: int = 0
    duplicates: int = 0
    via_gateway: int = 0
    unattributed: int = 0
    charged: Money = Money(0)
    tracked: Money = Money(0)
    ledger_entries: int = 0
    unknown_identities: Counter[str] = field(default_factory=Counter)
    flagged_models: Counter[str] = field(default_factory=Counter)


class Attributor:
    """Maps identities to people, from the identities table and people's emails."""

    def __init__(self, conn: Connection) -> None:
        self.map: dict[tuple[str, str], int] = {
            (r.kind, r.value): r.person_id for r in conn.execute(select(identities))
        }
        for r in conn.execute(select(people.c.id, people.c.email)):
            self.map.setdefault((IdentityKind.EMAIL.value, r.email), r.id)

    def person_for(self, ids: Iterable[Identity]) -> int | None:
        for ident in ids:
            n = ident.normalised()
            found = self.map.get((n.kind.value, n.value))
            if found is not None:
                return found
        return None


def import_usage(
    conn: Connection,
    records: Iterable[ImportedUsage],
    *,
    mode: ChargeMode,
    pricer: Pricer,
    now: datetime,
    dry_run: bool = False,
) -> ImportSummary:
    summary = ImportSummary()
    attributor = Attributor(conn)
    tz = OrgRepo(conn).get_org().timezone
    run = hashlib.sha256(now.isoformat().encode()).hexdigest()[:12]
    seen: set[str] = set()
    for batch in _batches(records, BATCH):
        summary.read += len(batch)
        fresh = _fresh(conn, batch, seen, summary)
        priced = _price_all(fresh, pricer, summary)
        rows, charges = _rows(fresh, priced, attributor, mode, now, summary)
        if dry_run or not rows:
            continue
        record_usage(conn, rows, zone(tz))
        if mode is ChargeMode.CHARGE:
            drafts = _debits(conn, charges, tz, run)
            summary.ledger_entries += len(LedgerRepo(conn).append(drafts, now))
    return summary


def _batches(records: Iterable[ImportedUsage], size: int) -> Iterator[list[ImportedUsage]]:
    it = iter(records)
    while batch := list(islice(it, size)):
        yield batch


def _fresh(
    conn: Connection, batch: list[ImportedUsage], seen: set[str], summary: ImportSummary
) -> list[ImportedUsage]:
    ids = [r.record_id for r in batch]
    known = existing(conn, usage_records.c.request_id, ids)
    provider_ids = {i for r in batch for i in (r.message_id, r.upstream_request_id) if i}
    metered: set[str] = set()  # provider ids the gateway already charged
    booked: set[str] = set()  # provider ids another import already booked
    if provider_ids:
        q = select(
            usage_records.c.source, usage_records.c.message_id, usage_records.c.upstream_request_id
        ).where(
            or_(
                usage_records.c.message_id.in_(provider_ids),
                usage_records.c.upstream_request_id.in_(provider_ids),
            ),
        )
        for source, m, u in conn.execute(q):
            (metered if source == "gateway" else booked).update(x for x in (m, u) if x)
    out = []
    for r in batch:
        provider_ids_of_r = {i for i in (r.message_id, r.upstream_request_id) if i}
        if r.record_id in known or r.record_id in seen or provider_ids_of_r & booked:
            summary.duplicates += 1
        elif (r.message_id and r.message_id in metered) or (
            r.upstream_request_id and r.upstream_request_id in metered
        ):
            summary.via_gateway += 1
        else:
            seen.add(r.record_id)
            booked.update(provider_ids_of_r)  # from two sources in one run: counts once
            out.append(r)
    return out


def _price_all(
    batch: list[ImportedUsage], pricer: Pricer, summary: ImportSummary
) -> list[PricedUsage]:
    priced, unknown = [], set()
    for r in batch:
        if not r.usage.total_tokens and r.reported_cost is not None:
            # a cost-only row (provider cost reports): booked at the cost the provider states
            priced.append(PricedUsage(r.reported_cost, "reported", False, r.provider, r.model, ()))
            continue
        try:
            p = pricer.price(r.usage, r.provider, r.model, r.used_utc)
        except UnknownModelPrice:
            unknown.add(f"{r.provider}/{r.model}")
            continue
        if p.flagged:
            summary.flagged_models[f"{r.provider}/{r.model}"] += 1
        priced.append(p)
    if unknown:
        raise UnknownModelPrice(
            "no price for " + ", ".join(sorted(unknown)) + "; nothing was imported. Add a price "
            "(`tokenwage price override PROVIDER MODEL --input .. --output ..`) or flag unknown "
            "models (`tokenwage price unknown flag ...`), then import again"
        )
    return priced


@dataclass(frozen=True, slots=True)
class _Charge:
    person_id: int | None
    record: ImportedUsage
    priced: PricedUsage


def _rows(
    batch: list[ImportedUsage],
    priced: list[PricedUsage],
    attributor: Attributor,
    mode: ChargeMode,
    now: datetime,
    summary: ImportSummary,
) -> tuple[list[dict[str, Any]], list[_Charge]]:
    rows, charges = [], []
    for r, p in zip(batch, priced, strict=True):
        person = attributor.person_for(r.identities)
        if person is None:
            summary.unattributed += 1
            for ident in r.identities:
                summary.unknown_identities[f"{ident.kind}:{ident.value}"] += 1
        summary.new += 1
        if mode is ChargeMode.CHARGE:
            summary.charged += p.cost
        else:
            summary.tracked += p.cost
        u = r.usage
        rows.append(
            {
                "request_id": r.record_id,
                "person_id": person,
                "key_id": None,
                "source": r.source,
                "provider": r.provider,
                "model": r.model,
                "requested_model": None,
                "endpoint": None,
                **u.counts(),
                "cost_nanousd": p.cost.nanousd,
                "price_source": p.source,
                "estimated": 0,
                "stream": 0,
                "status": 200,
                "latency_ms": None,
                "used_utc": r.used_utc,
                "recorded_utc": now,
                "session_id": r.session_id,
                "project": r.project,
                "hostname": r.hostname,
                "upstream_request_id": r.upstream_request_id,
                "message_id": r.message_id,
                "charge_mode": mode.value,
            }
        )
        charges.append(_Charge(person, r, p))
    return rows, charges


def _debits(conn: Connection, charges: list[_Charge], tz: str, run: str) -> list[EntryDraft]:
    """One debit per (person, source, local day, provider, model) in this batch."""
    groups: dict[tuple[int | None, str, str, str, str], list[_Charge]] = defaultdict(list)
    for c in charges:
        day = local_date(c.record.used_utc, tz).isoformat()
        groups[(c.person_id, c.record.source, day, c.record.provider, c.record.model)].append(c)
    ledger, repo = LedgerRepo(conn), OrgRepo(conn)
    funds: dict[int, Funds] = {}
    drafts: list[EntryDraft] = []
    for (person_id, source, day, provider, model), group in groups.items():
        usage = sum((c.record.usage for c in group), TokenUsage())
        cost = Money.total(c.priced.cost for c in group)
        first = min(c.record.used_utc for c in group)
        key = f"{run}:{person_id}:{day}:{provider}:{model}:{len(drafts)}"
        extra = {"records": len(group), "day": day}
        priced = PricedUsage(cost, group[0].priced.source, False, provider, model, ())
        if person_id is None:
            ledger.ensure_account(UNATTRIBUTED)
            drafts.append(
                EntryDraft(
                    UNATTRIBUTED,
                    EntryKind.USAGE,
                    -cost.nanousd,
                    first,
                    f"usage:{source}:{key}:own",
                    f"{provider}/{model}",
                    meta={"source": source, "provider": provider, "model": model, **extra},
                )
            )
            continue
        person = repo.get_person_by_id(person_id)
        own = person_account(person_id)
        pool = pool_account(person.team_slug) if person.team_slug else None
        f = funds.get(person_id) or Funds(
            own_balance=Money(ledger.balance(own)),
            pool_balance=Money(_balance_or_zero(ledger, pool)),
        )
        new = usage_drafts(
            priced,
            usage,
            f,
            person_id=person_id,
            own_account=own,
            pool_account=pool,
            provider=provider,
            model=model,
            used_utc=first,
            source=source,
            request_id=key,
            extra_meta=extra,
        )
        spent_own = sum(d.amount_nanousd for d in new if d.account == own)
        spent_pool = sum(d.amount_nanousd for d in new if d.account != own)
        funds[person_id] = Funds(
            own_balance=f.own_balance + Money(spent_own),
            pool_balance=f.pool_balance + Money(spent_pool),
        )
        drafts += new
    return drafts


def _balance_or_zero(ledger: LedgerRepo, key: str | None) -> int:
    if key is None:
        return 0
    try:
        return ledger.balance(key)
    except Exception:  # noqa: BLE001 - a team without a pool account has no pool money
        return 0
