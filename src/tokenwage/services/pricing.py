"""The organisation's pricing rules, stored in the database and turned into a Pricer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from sqlalchemy import Connection, Row, delete, insert, select, update

from tokenwage.core.errors import InvalidInput
from tokenwage.core.pricing import ModelPrice, Pricer, PricingPolicy
from tokenwage.storage.schema import org, pricing_rules


def parse_decimal(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text.strip().removeprefix("$").rstrip("%"))
    except InvalidOperation:
        raise InvalidInput(f"{what} {text!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise InvalidInput(f"{what} {text!r} must be a non-negative number")
    return value


def load_policy(conn: Connection) -> PricingPolicy:
    unknown = conn.execute(select(org.c.unknown_models)).scalar() or "reject"
    discount = Decimal(0)
    by_provider: dict[str, Decimal] = {}
    overrides: dict[tuple[str, str], list[ModelPrice]] = {}
    fallback: ModelPrice | None = None
    for r in conn.execute(select(pricing_rules).order_by(pricing_rules.c.id)):
        if r.kind == "discount":
            if r.provider == "*":
                discount = Decimal(r.percent)
            else:
                by_provider[r.provider] = Decimal(r.percent)
        elif r.kind == "override":
            overrides.setdefault((r.provider, r.model_pattern), []).append(_price(r))
        elif r.kind == "fallback":
            fallback = _price(r)
    return PricingPolicy(
        discount_percent=discount,
        provider_discount_percent=by_provider,
        overrides=overrides,
        unknown_models="flag" if unknown == "flag" else "reject",
        fallback=fallback if unknown == "flag" else None,
    )


def pricer_for(conn: Connection) -> Pricer:
    return Pricer(load_policy(conn))


def _price(r: Row[Any]) -> ModelPrice:
    def dec(text: str | None) -> Decimal | None:
        return Decimal(text) if text is not None else None

    return ModelPrice(
        input_mtok=Decimal(r.input_mtok),
        output_mtok=Decimal(r.output_mtok),
        cache_read_mtok=dec(r.cache_read_mtok),
        cache_write_mtok=dec(r.cache_write_mtok),
        cache_write_1h_mtok=dec(r.cache_write_1h_mtok),
        effective_from=r.effective_from,
    )


def set_discount(conn: Connection, percent: Decimal, provider: str = "*") -> None:
    if not Decimal(0) <= percent <= Decimal(100):
        raise InvalidInput(f"discount {percent}% must be between 0 and 100")
    conn.execute(
        delete(pricing_rules).where(
            pricing_rules.c.kind == "discount", pricing_rules.c.provider == provider
        )
    )
    conn.execute(
        insert(pricing_rules).values(
            kind="discount",
            provider=provider,
            model_pattern="*",
            percent=str(percent),
            created_utc=datetime.now(UTC),
        )
    )
    load_policy(conn)  # validate the whole policy before the transaction commits


@dataclass(frozen=True)
class PriceInput:
    input_mtok: Decimal
    output_mtok: Decimal
    cache_read_mtok: Decimal | None = None
    cache_write_mtok: Decimal | None = None
    cache_write_1h_mtok: Decimal | None = None


def add_override(
    conn: Connection,
    provider: str,
    model_pattern: str,
    price: PriceInput,
    effective_from: datetime | None,
) -> None:
    _store_price(conn, "override", provider.lower(), model_pattern.lower(), price, effective_from)


def set_unknown_models(
    conn: Connection, mode: Literal["reject", "flag"], fallback: PriceInput | None
) -> None:
    if mode == "flag" and fallback is None:
        raise InvalidInput("flagging unknown models needs a fallback price: --input and --output")
    conn.execute(update(org).values(unknown_models=mode))
    conn.execute(delete(pricing_rules).where(pricing_rules.c.kind == "fallback"))
    if fallback is not None:
        _store_price(conn, "fallback", "*", "*", fallback, None)
    load_policy(conn)


def _store_price(
    conn: Connection,
    kind: str,
    provider: str,
    model_pattern: str,
    price: PriceInput,
    effective_from: datetime | None,
) -> None:
    conn.execute(
        insert(pricing_rules).values(
            kind=kind,
            provider=provider,
            model_pattern=model_pattern,
            effective_from=effective_from,
            created_utc=datetime.now(UTC),
            **{f: (str(v) if v is not None else None) for f, v in vars(price).items()},
        )
    )
    load_policy(conn)


def list_rules(conn: Connection) -> list[dict[str, object]]:
    rows = conn.execute(select(pricing_rules).order_by(pricing_rules.c.id))
    return [
        {k: v for k, v in r._mapping.items() if k not in ("created_utc",) and v is not None}
        for r in rows
    ]
