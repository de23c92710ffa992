"""Monthly statements built from a real hash chain, and their three renderings."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import pytest

from tokenwage.core.errors import InvalidInput, LedgerTampered
from tokenwage.core.ledger import (
    GENESIS_HASH,
    Entry,
    EntryDraft,
    EntryKind,
    Head,
    append,
    canonical_bytes,
    entry_hash,
)
from tokenwage.core.money import Money
from tokenwage.core.statements import Statement, build_statement
from tokenwage.render import statement_html, statement_json, statement_text

ACCOUNT = "person:7"
TZ = "Europe/Berlin"  # UTC+1 in November
GENERATED = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def usd(text: str) -> int:
    return Money.parse(text).nanousd


def at(day: int, hour: int = 10, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def draft(kind: EntryKind, amount: str, ref: str, memo: str = "", **meta: Any) -> EntryDraft:
    return EntryDraft(ACCOUNT, kind, usd(amount), at(1), ref, memo=memo, meta=meta)


def usage(amount: str, ref: str, **meta: Any) -> EntryDraft:
    return draft(EntryKind.USAGE, "-" + amount, ref, **meta)


def chain(head: Head, *batches: tuple[datetime, list[EntryDraft]]) -> tuple[list[Entry], Head]:
    """Append each batch at its recording time, like the store would."""
    out: list[Entry] = []
    for recorded, drafts in batches:
        entries, head = append(head, drafts, recorded)
        out += entries
    return out, head


SONNET = {"provider": "anthropic", "model": "claude-sonnet-4"}
GPT = {"provider": "openai", "model": "gpt-4.1"}


@pytest.fixture
def october() -> tuple[list[Entry], Head]:
    return chain(
        Head(), (at(1, month=10), [draft(EntryKind.GRANT, "100", "oct", source="allowance")])
    )


@pytest.fixture
def november(october: tuple[list[Entry], Head]) -> tuple[list[Entry], Head]:
    _, head = october
    return chain(
        head,
        # 23:30 UTC on 31 October is 00:30 on 1 November in Berlin: a November entry.
        (
            datetime(2026, 10, 31, 23, 30, tzinfo=UTC),
            [
                draft(
                    EntryKind.GRANT, "200", "nov", source="allowance", reason="November allowance"
                ),
                draft(EntryKind.ROLLOVER, "0", "roll-oct", carried_nanousd=usd("50")),
            ],
        ),
        (
            at(5),
            [
                usage(
                    "1.50",
                    "u1",
                    **SONNET,
                    source="gateway",
                    input_tokens=1_000_000,
                    output_tokens=20_000,
                    cache_read_tokens=500_000,
                    cache_write_tokens=10_000,
                    cache_write_1h_tokens=5_000,
                ),
                usage("0.25", "u2", **GPT, source="codex", input_tokens=100_000),
                usage(
                    "0.75",
                    "u3",
                    **SONNET,
                    source="claude-code",
                    input_tokens=200_000,
                    output_tokens=10_000,
                ),
                usage("0.10", "u4"),  # no meta at all
            ],
        ),
        (
            at(10),
            [
                draft(
                    EntryKind.GRANT, "25", "bonus", "award", source="one-off", reason="Hackathon"
                ),
                draft(EntryKind.ADJUSTMENT, "-1", "adj", "<script>alert(1)</script>"),
            ],
        ),
        (at(12), [draft(EntryKind.REVERSAL, "0.25", "rev", "duplicate import", reverses_seq=5)]),
        (at(20), [draft(EntryKind.EXPIRY, "-10", "exp", "October grant lapsed")]),
    )


@pytest.fixture
def pool() -> list[Entry]:
    drafts = [
        EntryDraft(
            "pool:platform",
            EntryKind.USAGE,
            usd("-3"),
            at(7),
            "p1",
            meta={**GPT, "person_id": 7, "input_tokens": 300_000, "source": "gateway"},
        )
    ]
    entries, _ = append(Head(), drafts, at(7))
    return entries


def build(october: tuple[list[Entry], Head], entries: list[Entry], **kw: Any) -> Statement:
    _, head = october
    args: dict[str, Any] = {
        "person_name": "Ada Lovelace",
        "person_email": "ada@example.com",
        "account": ACCOUNT,
        "year": 2026,
        "month": 11,
        "tz": TZ,
        "opening_balance_nanousd": head.balance_nanousd,
        "opening_seal": head.hash,
        "entries": entries,
        "generated_utc": GENERATED,
    }
    return build_statement(**{**args, **kw})


def test_totals_and_seal(october, november, pool) -> None:
    entries, head = november
    st = build(october, entries, pool_entries=pool, closing_balance_nanousd=head.balance_nanousd)
    assert st.opening_balance == Money.parse("100")
    assert st.allowance_total == Money.parse("200")
    assert st.one_off_total == Money.parse("25")
    assert st.grants_total == Money.parse("225")
    assert st.usage_total == Money.parse("-2.60")
    assert st.usage.cost == Money.parse("2.60")
    assert st.usage.requests == 4
    assert st.rollover_carried == Money.parse("50")
    assert st.expired_total == Money.parse("-10")
    assert st.adjustments_total == Money.parse("-1")
    assert st.reversals_total == Money.parse("0.25")
    # 100 + 225 - 2.60 - 10 - 1 + 0.25
    assert st.closing_balance == Money.parse("311.65")
    assert st.entry_count == 10
    assert (st.first_seq, st.last_seq) == (2, 11)
    assert st.seal_hash == entries[-1].hash == head.hash
    assert st.opening_seal == october[1].hash


def test_grant_and_memo_lines(october, november) -> None:
    st = build(october, november[0])
    assert [(str(g.day), g.source, g.reason, g.amount) for g in st.grant_lines] == [
        ("2026-11-01", "allowance", "November allowance", Money.parse("200")),
        ("2026-11-01", "one-off", "Hackathon", Money.parse("25")),
    ]
    assert [(m.kind, m.memo, m.reverses_seq) for m in st.memo_lines] == [
        (EntryKind.ADJUSTMENT, "<script>alert(1)</script>", None),
        (EntryKind.REVERSAL, "duplicate import", 5),
    ]


def test_usage_by_model_and_source(october, november, pool) -> None:
    st = build(october, november[0], pool_entries=pool)
    rows = [(r.provider, r.model, r.usage.requests, r.usage.cost) for r in st.usage_by_model]
    assert rows == [
        ("anthropic", "claude-sonnet-4", 2, Money.parse("2.25")),
        ("openai", "gpt-4.1", 1, Money.parse("0.25")),
        ("unknown", "unknown", 1, Money.parse("0.10")),
    ]
    sonnet = st.usage_by_model[0].usage
    assert (sonnet.input_tokens, sonnet.output_tokens) == (1_200_000, 30_000)
    assert (sonnet.cache_read_tokens, sonnet.cache_write_tokens) == (500_000, 10_000)
    assert sonnet.cache_write_total_tokens == 15_000
    assert [(r.source, r.usage.cost) for r in st.usage_by_source] == [
        ("gateway", Money.parse("1.50")),
        ("claude-code", Money.parse("0.75")),
        ("codex", Money.parse("0.25")),
        ("unknown", Money.parse("0.10")),
    ]
    assert st.pool_usage.cost == Money.parse("3")
    assert [(r.model, r.usage.input_tokens) for r in st.pool_usage_by_model] == [
        ("gpt-4.1", 300_000)
    ]


def test_empty_month_keeps_the_opening_seal(october) -> None:
    st = build(october, [])
    assert st.seal_hash == october[1].hash
    assert st.closing_balance == st.opening_balance == Money.parse("100")
    assert (st.entry_count, st.first_seq, st.last_seq) == (0, None, None)


def test_first_month_chains_from_genesis() -> None:
    entries, head = chain(Head(), (at(3), [draft(EntryKind.GRANT, "5", "g", source="allowance")]))
    st = build((entries, Head()), entries)
    assert st.opening_seal == GENESIS_HASH
    assert st.seal_hash == head.hash


def test_wrong_opening_seal_is_tampering(october, november) -> None:
    with pytest.raises(LedgerTampered, match="opening seal"):
        build(october, november[0], opening_seal=GENESIS_HASH)


def test_missing_entry_is_tampering(october, november) -> None:
    entries = november[0]
    with pytest.raises(LedgerTampered, match="seq 4 follows seq 2"):
        build(october, [entries[0], *entries[2:]])


def test_edited_entry_is_tampering(october, november) -> None:
    entries = list(november[0])
    entries[3] = dataclasses.replace(entries[3], amount_nanousd=-1)
    with pytest.raises(LedgerTampered, match="hash"):
        build(october, entries)


def test_closing_balance_must_match_the_store(october, november) -> None:
    entries, head = november
    with pytest.raises(LedgerTampered, match="stored closing balance"):
        build(october, entries, closing_balance_nanousd=head.balance_nanousd + 1)


def _rehash(e: Entry, **changes: Any) -> Entry:
    fields = {**{f.name: getattr(e, f.name) for f in dataclasses.fields(e)}, **changes}
    fields.pop("id")
    digest = entry_hash(canonical_bytes(**{k: v for k, v in fields.items() if k != "hash"}))
    return Entry(**{**fields, "hash": digest})


def test_money_moved_by_a_rollover_breaks_the_invariant(october) -> None:
    grant, head = chain(october[1], (at(2), [draft(EntryKind.GRANT, "1", "g", source="x")]))
    rollover = _rehash(
        grant[0], seq=grant[0].seq + 1, kind=EntryKind.ROLLOVER, prev_hash=head.hash, ref="r"
    )
    with pytest.raises(LedgerTampered, match="rollover"):
        build(october, [grant[0], rollover])


def test_entries_from_outside_the_month_or_account_are_refused(october, november, pool) -> None:
    december, _ = chain(november[1], (at(30, 23), [usage("1", "dec")]))  # 1 Dec 00:00 Berlin
    with pytest.raises(InvalidInput, match="outside November 2026"):
        build(october, [*november[0], *december])
    with pytest.raises(InvalidInput, match="belongs to 'pool:platform'"):
        build(october, pool)
    with pytest.raises(InvalidInput, match="pass only usage"):
        build(october, november[0], pool_entries=november[0][:1])


def test_text_is_an_aligned_pay_stub(october, november, pool) -> None:
    text = statement_text(build(october, november[0], pool_entries=pool))
    lines = text.splitlines()
    assert lines[0] == "TOKEN ALLOWANCE STATEMENT  November 2026"
    opening = next(line for line in lines if line.startswith("Opening balance"))
    closing = next(line for line in lines if line.startswith("Closing balance"))
    assert opening.endswith("$100.00") and closing.endswith("$311.65")
    assert len(opening) == len(closing)
    for figure in ("$200.00", "$25.00", "-$2.60", "-$10.00", "1,200,000", "15,000"):
        assert figure in text
    assert "DRAWN FROM TEAM POOL" in text and "300,000" in text
    assert lines[-1] == f"Seal          {november[1].hash}"


def _walk(value: Any) -> None:
    assert not isinstance(value, float)
    assert isinstance(value, (dict, list, str, int, type(None)))
    if isinstance(value, Mapping):
        for v in value.values():
            _walk(v)
    elif isinstance(value, list):
        for v in value:
            _walk(v)


def test_json_is_exact_and_float_free(october, november, pool) -> None:
    doc = statement_json(build(october, november[0], pool_entries=pool))
    _walk(doc)
    json.dumps(doc)
    assert doc["closing_balance_nanousd"] == usd("311.65")
    assert doc["closing_balance_usd"] == "311.65"
    assert doc["usage"]["total_usd"] == "-2.6"
    assert doc["usage"]["by_model"][0]["cost_nanousd"] == usd("2.25")
    assert doc["usage"]["by_model"][0]["cache_write_1h_tokens"] == 5_000
    assert doc["grants"]["one_off_total_usd"] == "25"
    assert doc["adjustments_and_reversals"][1]["reverses_seq"] == 5
    assert doc["pool_usage"]["cost_usd"] == "3"
    assert doc["seal_hash"] == november[1].hash
    assert doc["period"]["start_utc"] == "2026-10-31T23:00:00.000000Z"


def test_html_is_self_contained_and_escapes_memos(october, november, pool) -> None:
    page = statement_html(build(october, november[0], pool_entries=pool))
    assert "$311.65" in page and "1,200,000" in page and november[1].hash in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page
    for external in ("src=", "href=", "@import", "url("):
        assert external not in page
    assert "<style>" in page and "Drawn from team pool" in page


def test_template_ships_inside_the_package() -> None:
    template = resources.files("tokenwage.render") / "templates" / "statement.html"
    assert template.is_file()
