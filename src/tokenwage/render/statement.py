"""A monthly token statement as a plain-text pay stub, a JSON-safe dict, or a printable page.

Text and HTML show dollars rounded for people (:meth:`Money.usd`); JSON carries every amount
exactly, twice: ``*_nanousd`` (int) and ``*_usd`` (exact decimal string). No floats anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from tokenwage.core.ledger import iso
from tokenwage.core.money import Money
from tokenwage.core.statements import ModelUsage, Statement, UsageSummary

_WIDTH = 78
_USAGE_HEADERS = ("requests", "input", "output", "cache read", "cache write", "cost")


# -- text ---------------------------------------------------------------------------------
def statement_text(st: Statement) -> str:
    p = st.period
    out = [
        f"TOKEN ALLOWANCE STATEMENT  {p.label}",
        f"{st.person_name} <{st.person_email}>  account {st.account}",
        f"Recorded {p.first_day} to {p.last_day} ({p.tz})",
        "=" * _WIDTH,
        *_table(("", ""), [(label, m.usd()) for label, m in _summary(st)])[1:],
        f"Rollover carried into next period (memo, moves no money): {st.rollover_carried.usd()}",
    ]
    if st.grant_lines:
        out += _section("GRANTS")
        out += _table(
            ("date", "source", "reason", "amount"),
            [(str(g.day), g.source, g.reason, g.amount.usd()) for g in st.grant_lines],
        )
    if st.usage.requests:
        out += _section("USAGE BY MODEL")
        out += _usage_table(("provider", "model"), _model_rows(st.usage_by_model), st.usage)
        out += _section("USAGE BY SOURCE")
        out += _usage_table(
            ("source",), [((r.source,), r.usage) for r in st.usage_by_source], st.usage
        )
    if st.memo_lines:
        out += _section("ADJUSTMENTS AND REVERSALS")
        out += _table(
            ("date", "seq", "kind", "memo", "amount"),
            [
                (str(m.day), str(m.seq), _memo_kind(m.kind, m.reverses_seq), m.memo, m.amount.usd())
                for m in st.memo_lines
            ],
        )
    if st.pool_usage.requests:
        out += _section("DRAWN FROM TEAM POOL (not part of your balance)")
        out += _usage_table(
            ("provider", "model"), _model_rows(st.pool_usage_by_model), st.pool_usage
        )
    entries = f"{st.entry_count}" + (
        f" (seq {st.first_seq} to {st.last_seq})" if st.entry_count else ""
    )
    out += [
        "=" * _WIDTH,
        f"Entries       {entries}",
        f"Generated     {iso(st.generated_utc)}",
        f"Opening seal  {st.opening_seal}",
        f"Seal          {st.seal_hash}",
    ]
    return "\n".join(out) + "\n"


def _summary(st: Statement) -> list[tuple[str, Money]]:
    rows = [
        ("Opening balance", st.opening_balance),
        ("Allowance grants", st.allowance_total),
        ("One-off grants", st.one_off_total),
    ]
    if st.other_grants_total:
        rows.append(("Other grants", st.other_grants_total))
    rows += [
        ("Usage", st.usage_total),
        ("Expired", st.expired_total),
        ("Adjustments", st.adjustments_total),
        ("Reversals", st.reversals_total),
        ("Closing balance", st.closing_balance),
    ]
    return rows


def _section(title: str) -> list[str]:
    return ["", title, "-" * _WIDTH]


def _memo_kind(kind: str, reverses_seq: int | None) -> str:
    return f"{kind} of seq {reverses_seq}" if reverses_seq is not None else str(kind)


def _model_rows(rows: Sequence[ModelUsage]) -> list[tuple[tuple[str, ...], UsageSummary]]:
    return [((r.provider, r.model), r.usage) for r in rows]


def _usage_cells(u: UsageSummary) -> tuple[str, ...]:
    counts = (u.requests, u.input_tokens, u.output_tokens, u.cache_read_tokens)
    return (*(f"{n:,}" for n in counts), f"{u.cache_write_total_tokens:,}", u.cost.usd())


def _usage_table(
    keys: tuple[str, ...],
    rows: Sequence[tuple[tuple[str, ...], UsageSummary]],
    total: UsageSummary,
) -> list[str]:
    body = [(*key, *_usage_cells(u)) for key, u in rows]
    body.append(("Total", *([""] * (len(keys) - 1)), *_usage_cells(total)))
    return _table((*keys, *_USAGE_HEADERS), body, text_columns=len(keys))


def _table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], *, text_columns: int | None = None
) -> list[str]:
    """Columns padded to their widest cell; text on the left, figures on the right.

    By default every column but the last is text.
    """
    n_text = len(headers) - 1 if text_columns is None else text_columns
    rows = [[" ".join(c.split()) for c in r] for r in rows]  # a memo's newlines stay inline
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.ljust(w) if i < n_text else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return [line(headers), *(line(r) for r in rows)]


# -- JSON ---------------------------------------------------------------------------------
def statement_json(st: Statement) -> dict[str, Any]:
    """Plain dicts, lists, str, int, bool and None only: safe for ``json.dumps``."""
    p = st.period
    return {
        "period": {
            "year": p.year,
            "month": p.month,
            "tz": p.tz,
            "start_utc": iso(p.start_utc),
            "end_utc": iso(p.end_utc),
        },
        "person": {"name": st.person_name, "email": st.person_email},
        "account": st.account,
        **_amount("opening_balance", st.opening_balance),
        "grants": {
            **_amount("total", st.grants_total),
            **_amount("allowance_total", st.allowance_total),
            **_amount("one_off_total", st.one_off_total),
            **_amount("other_total", st.other_grants_total),
            "lines": [
                {
                    "seq": g.seq,
                    "date": g.day.isoformat(),
                    "source": g.source,
                    "reason": g.reason,
                    **_amount("amount", g.amount),
                }
                for g in st.grant_lines
            ],
        },
        "usage": {
            **_amount("total", st.usage_total),
            **_usage_json(st.usage),
            "by_model": [_model_json(r) for r in st.usage_by_model],
            "by_source": [{"source": r.source, **_usage_json(r.usage)} for r in st.usage_by_source],
        },
        **_amount("rollover_carried", st.rollover_carried),
        **_amount("expired_total", st.expired_total),
        **_amount("adjustments_total", st.adjustments_total),
        **_amount("reversals_total", st.reversals_total),
        "adjustments_and_reversals": [
            {
                "seq": m.seq,
                "kind": str(m.kind),
                "date": m.day.isoformat(),
                "memo": m.memo,
                "reverses_seq": m.reverses_seq,
                **_amount("amount", m.amount),
            }
            for m in st.memo_lines
        ],
        "pool_usage": {
            **_usage_json(st.pool_usage),
            "by_model": [_model_json(r) for r in st.pool_usage_by_model],
        },
        **_amount("closing_balance", st.closing_balance),
        "entry_count": st.entry_count,
        "first_seq": st.first_seq,
        "last_seq": st.last_seq,
        "opening_seal": st.opening_seal,
        "seal_hash": st.seal_hash,
        "generated_utc": iso(st.generated_utc),
    }


def _amount(name: str, m: Money) -> dict[str, Any]:
    return {f"{name}_nanousd": m.nanousd, f"{name}_usd": m.exact()}


def _usage_json(u: UsageSummary) -> dict[str, Any]:
    return {
        "requests": u.requests,
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cache_read_tokens": u.cache_read_tokens,
        "cache_write_tokens": u.cache_write_tokens,
        "cache_write_1h_tokens": u.cache_write_1h_tokens,
        "reasoning_tokens": u.reasoning_tokens,
        **_amount("cost", u.cost),
    }


def _model_json(r: ModelUsage) -> dict[str, Any]:
    return {"provider": r.provider, "model": r.model, **_usage_json(r.usage)}


# -- HTML ---------------------------------------------------------------------------------
def statement_html(st: Statement) -> str:
    """A self-contained printable page: inline CSS, no scripts, no external assets."""
    return _environment().get_template("statement.html").render(st=st)


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("tokenwage.render", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["usd"] = Money.usd
    env.filters["tokens"] = _tokens
    env.filters["iso"] = iso
    return env


def _tokens(n: int) -> str:
    return f"{n:,}"
