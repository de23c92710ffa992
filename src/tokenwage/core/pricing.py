"""The cost of token usage at the price in force when it was used.

Prices come from, in order:

1. an org **override** (:class:`ModelPrice`) whose ``(provider, model)`` patterns match and
   whose ``effective_from`` is the latest at or before the time of use;
2. the **genai-prices** data (with the policy's discount), matched by genai-prices' own model
   rules, so ``claude-sonnet-4-20250514`` resolves to ``claude-sonnet-4-0``;
3. otherwise the model is *unknown*: rejected with :class:`UnknownModelPrice`, or, with
   ``unknown_models="flag"``, priced at the policy's ``fallback`` and flagged. Never $0.

genai-prices' convention (``genai_prices.Usage``), and how ours maps onto it
-----------------------------------------------------------------------------
genai-prices counts tokens hierarchically: ``input_tokens`` is the **whole prompt**, and
``cache_read_tokens`` / ``cache_write_tokens`` are parts of it; ``cache_write_1h_tokens`` is a
part of ``cache_write_tokens``; ``output_reasoning_tokens`` is a part of ``output_tokens``. Each
priced part is charged at its own price and subtracted from its parent; a part with no price
of its own is charged at its parent's price. :func:`to_genai_usage` does the mapping; the
arithmetic below re-implements that rule on the cached per-token rates (it is checked against
``genai_prices.calc_price`` for every model in the data by the tests). Tiered prices use the
whole prompt as the threshold, cliff style, like genai-prices.

Only tokens are priced: per-request, web-search, audio-hour and similar fees in genai-prices
are outside :class:`TokenUsage` and are not charged here. Service-tier variants (batch, flex,
priority) are not selected; the standard price is used.

Arithmetic is exact: the parts are ``Decimal``; the total is the same exact sum done in ints by
:mod:`tokenwage.core.pricing_fast` and rounded once by the rule of :meth:`Money.from_decimal`
(or, outside the range where that is the same, the ``Decimal`` sum rounded by it).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import Literal

import genai_prices
from genai_prices import data_snapshot
from genai_prices import types as gp

from tokenwage.core.errors import InvalidInput, UnknownModelPrice
from tokenwage.core.money import Money
from tokenwage.core.pricing_fast import FlatPlan, TieredPlan, TieredRate, plan_for
from tokenwage.core.usage import TokenUsage

__all__ = ["ModelPrice", "PricedUsage", "Pricer", "PricingPolicy", "PriceSource", "to_genai_usage"]

PriceSource = Literal["genai-prices", "override", "fallback", "reported"]
_PER_MTOK = -6  # scaleb exponent: price per million tokens -> price per token


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per million tokens for one model, from ``effective_from`` (None: since always).

    A missing cache price falls back like genai-prices: cache reads and 5-minute writes at
    ``input_mtok``, 1-hour writes at ``cache_write_mtok`` (or ``input_mtok``).
    """

    input_mtok: Decimal
    output_mtok: Decimal
    cache_read_mtok: Decimal | None = None
    cache_write_mtok: Decimal | None = None
    cache_write_1h_mtok: Decimal | None = None
    effective_from: datetime | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "effective_from":
                if value is not None:
                    _require_aware(value, "ModelPrice.effective_from")
            elif value is not None and not _is_price(value):
                raise InvalidInput(
                    f"ModelPrice.{f.name} must be a non-negative Decimal (USD per million "
                    f"tokens), got {value!r}; write it as Decimal('3.75')"
                )


@dataclass(frozen=True)
class PricingPolicy:
    """How an org prices usage. ``overrides`` keys are ``(provider, model)`` fnmatch patterns.

    Exact keys are tried before wildcard keys, then keys in the order given; within one key
    the entry with the latest ``effective_from`` at or before the time of use applies. An
    override that is not yet in force leaves the model to genai-prices. ``discount_percent``
    (0-100) applies to genai-prices prices only; ``provider_discount_percent`` replaces it for
    the providers it names.
    """

    discount_percent: Decimal = Decimal(0)
    provider_discount_percent: Mapping[str, Decimal] = field(default_factory=dict)
    overrides: Mapping[tuple[str, str], Sequence[ModelPrice]] = field(default_factory=dict)
    unknown_models: Literal["reject", "flag"] = "reject"
    fallback: ModelPrice | None = None

    def __post_init__(self) -> None:
        _check_percent(self.discount_percent, "discount_percent")
        for provider, pct in self.provider_discount_percent.items():
            _check_percent(pct, f"provider_discount_percent[{provider!r}]")
        if self.unknown_models not in ("reject", "flag"):
            raise InvalidInput(
                f"unknown_models must be 'reject' or 'flag', got {self.unknown_models!r}"
            )
        if self.unknown_models == "flag" and self.fallback is None:
            raise InvalidInput(
                "unknown_models='flag' needs a fallback ModelPrice to charge unknown models at; "
                "set fallback=ModelPrice(...) or use unknown_models='reject'"
            )
        for key, prices in self.overrides.items():
            if not (
                isinstance(key, tuple) and len(key) == 2 and all(isinstance(k, str) for k in key)
            ):
                raise InvalidInput(f"override keys are (provider, model) pairs, got {key!r}")
            if not prices or not all(isinstance(p, ModelPrice) for p in prices):
                raise InvalidInput(f"override {key!r} needs a non-empty list of ModelPrice")
            starts = [p.effective_from for p in prices]
            if len(set(starts)) != len(starts):
                raise InvalidInput(
                    f"override {key!r} has two prices with the same effective_from; "
                    "give each price its own start"
                )


@dataclass(frozen=True, slots=True)
class PricedUsage:
    """The cost of one usage, rounded once from the exact sum of ``parts_usd``.

    ``parts_usd`` holds the exact (unrounded) USD per kind of token that had tokens: ``input``,
    ``cache_read``, ``cache_write``, ``cache_write_1h``, ``output`` and, only for models that
    price reasoning apart from output, ``reasoning``.
    """

    cost: Money
    source: PriceSource
    flagged: bool
    provider: str
    model_ref: str
    parts_usd: tuple[tuple[str, Decimal], ...]

    @property
    def detail(self) -> dict[str, Money]:
        """Money per kind, each rounded on its own for display (built on access, as it is
        rarely needed). Their sum can differ from ``cost`` by up to a nanousd per kind."""
        return {kind: Money.from_decimal(usd) for kind, usd in self.parts_usd}


def to_genai_usage(usage: TokenUsage) -> genai_prices.Usage:
    """Our usage in genai-prices' hierarchical convention (see the module docstring)."""
    return genai_prices.Usage(
        input_tokens=usage.prompt_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens + usage.cache_write_1h_tokens,
        cache_write_1h_tokens=usage.cache_write_1h_tokens,
        output_tokens=usage.output_tokens,
        output_reasoning_tokens=usage.reasoning_tokens,
    )


# -- per-token rates ----------------------------------------------------------------------
_Rate = Decimal | TieredRate


@dataclass(frozen=True, slots=True)
class _Rates:
    """USD per token for each kind; ``output`` None: no output price; ``reasoning`` None:
    reasoning is charged as output."""

    input: _Rate
    output: _Rate | None
    cache_read: _Rate
    cache_write: _Rate
    cache_write_1h: _Rate
    reasoning: _Rate | None
    tiered: bool
    plan: FlatPlan | TieredPlan = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        kinds = (self.input, self.cache_read, self.cache_write, self.cache_write_1h)
        plan = plan_for((*kinds, self.output, self.reasoning), self.tiered)
        object.__setattr__(self, "plan", plan)


def _rate(mtok: Decimal | gp.TieredPrices | None, factor: Decimal) -> _Rate | None:
    if mtok is None:
        return None
    if isinstance(mtok, Decimal):
        return (mtok * factor).scaleb(_PER_MTOK)
    tiers = sorted(mtok.tiers, key=lambda t: t.start, reverse=True)
    return TieredRate(
        base=(mtok.base * factor).scaleb(_PER_MTOK),
        tiers=tuple((t.start, (t.price * factor).scaleb(_PER_MTOK)) for t in tiers),
    )


def _rates(prices: object, factor: Decimal = Decimal(1)) -> _Rates | None:
    """Per-token rates of a genai-prices or our ``ModelPrice`` (same ``*_mtok`` names), with
    genai-prices' fallbacks for missing cache prices; None when there is no input price."""
    mtoks: dict[str, gp.TieredPrices | Decimal | None] = {
        key: getattr(prices, f"{key}_mtok", None) for key in _PRICE_KEYS
    }
    rate = {key: _rate(mtok, factor) for key, mtok in mtoks.items()}
    input_rate = rate["input"]
    if input_rate is None:
        return None
    cache_write = input_rate if rate["cache_write"] is None else rate["cache_write"]
    return _Rates(
        input=input_rate,
        output=rate["output"],
        cache_read=input_rate if rate["cache_read"] is None else rate["cache_read"],
        cache_write=cache_write,
        cache_write_1h=cache_write if rate["cache_write_1h"] is None else rate["cache_write_1h"],
        reasoning=rate["output_reasoning"],
        tiered=any(isinstance(m, gp.TieredPrices) for m in mtoks.values()),
    )


_PRICE_KEYS = ("input", "output", "cache_read", "cache_write", "cache_write_1h", "output_reasoning")


def _override_rates(price: ModelPrice) -> _Rates:
    rates = _rates(price)
    assert rates is not None, "ModelPrice always has input_mtok"
    return rates


# -- what one (provider, model, day) resolves to -------------------------------------------
@dataclass(frozen=True, slots=True)
class _Quote:
    """genai-prices rates in force on one UTC day; time-of-day prices are chosen per call."""

    provider: str
    model_ref: str
    options: tuple[tuple[gp.TimeOfDateConstraint | None, _Rates | None], ...]

    def select(self, used_utc: datetime) -> _Rates | None:
        for constraint, rates in self.options:
            if constraint is None or constraint.active(used_utc):
                return rates
        raise AssertionError("the last option is always unconditional")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class _Resolved:
    provider: str  # the names, normalised
    model: str
    overrides: tuple[tuple[datetime | None, _Rates], ...]  # latest effective_from first
    quote: _Quote | None
    # what _lookup returns whatever the time and usage: no overrides, one genai-prices
    # option with input and output prices
    always: tuple[_Rates, PriceSource, bool, str, str] | None = None

    def __post_init__(self) -> None:
        q = self.quote
        if not self.overrides and q is not None and len(q.options) == 1:
            constraint, rates = q.options[0]
            if constraint is None and rates is not None and rates.output is not None:
                always = (rates, "genai-prices", False, q.provider, q.model_ref)
                object.__setattr__(self, "always", always)


class Pricer:
    """Prices usage under one :class:`PricingPolicy`, caching lookups per (provider, model, day)."""

    def __init__(self, policy: PricingPolicy, *, cache_size: int = 4096) -> None:
        self.policy = policy
        exact = [(k, v) for k, v in policy.overrides.items() if not _has_wildcard(k)]
        wild = [(k, v) for k, v in policy.overrides.items() if _has_wildcard(k)]
        self._overrides = [
            ((provider.lower(), model.lower()), _by_start(prices))
            for (provider, model), prices in exact + wild
        ]
        self._fallback = _override_rates(policy.fallback) if policy.fallback else None
        self._discounts = {
            p.strip().lower(): pct for p, pct in policy.provider_discount_percent.items()
        }
        self._resolve = functools.lru_cache(maxsize=cache_size)(self._resolve_uncached)

    def price(
        self, usage: TokenUsage, provider: str, model: str, used_utc: datetime
    ) -> PricedUsage:
        """The cost of ``usage`` of ``model`` from ``provider`` at the time ``used_utc``."""
        if not isinstance(usage, TokenUsage):
            raise InvalidInput(f"usage must be a TokenUsage, got {type(usage).__name__}")
        rates, source, flagged, provider, ref = self._lookup(
            provider, model, used_utc, usage.output_tokens
        )
        plan = rates.plan
        flat = plan if isinstance(plan, FlatPlan) else plan.at(usage.prompt_tokens)
        parts, nanousd = flat.price(usage)
        if nanousd is None:  # outside the range where ints and Decimal agree: the Decimal sum
            cost = Money.from_decimal(sum((usd for _, usd in parts), Decimal(0)))
            return PricedUsage(cost, source, flagged, provider, ref, parts)
        return _new_priced(nanousd, source, flagged, provider, ref, parts)

    def worst_case_cost(
        self,
        provider: str,
        model: str,
        used_utc: datetime,
        *,
        prompt_tokens_estimate: int,
        max_output_tokens: int,
    ) -> PricedUsage:
        """The most a request can cost, for holds: ``max_output_tokens`` of output plus the
        prompt at the dearest input-side price (uncached input, or a cache write, which costs
        more than input on Anthropic's models). Ties go to the first of input, 5-minute
        write, 1-hour write."""
        prompt, output = prompt_tokens_estimate, max_output_tokens
        if type(prompt) is not int or prompt < 0 or type(output) is not int or output < 0:
            TokenUsage(input_tokens=prompt, output_tokens=output)  # raises, naming the field
        rates, source, flagged, found, ref = self._lookup(provider, model, used_utc, output)
        plan = rates.plan
        dearest = (plan if isinstance(plan, FlatPlan) else plan.at(prompt)).dearest(prompt, output)
        if dearest is not None:
            return _new_priced(dearest[0], source, flagged, found, ref, dearest[1])
        kinds = ("input_tokens", "cache_write_tokens", "cache_write_1h_tokens")
        usages = [TokenUsage(**{kind: prompt}, output_tokens=output) for kind in kinds]
        priced = [self.price(u, provider, model, used_utc) for u in usages]
        return max(priced, key=lambda p: p.cost)

    def _lookup(
        self, provider: str, model: str, used_utc: datetime, output_tokens: int
    ) -> tuple[_Rates, PriceSource, bool, str, str]:
        """The rates ``price`` charges, with the source, flag, provider and model reference of
        its result; raises as ``price`` does."""
        if type(used_utc) is datetime and used_utc.tzinfo is UTC:
            day = used_utc.date()
        else:  # names first: the errors come in the order of the arguments
            _name(provider, "provider"), _name(model, "model")
            _require_aware(used_utc, "used_utc")
            day = used_utc.astimezone(UTC).date()
        if type(provider) is not str or type(model) is not str:
            provider, model = _name(provider, "provider"), _name(model, "model")
        # cached by the names as given, so a hit skips normalising them
        resolved = self._resolve(provider, model, day)
        if resolved.always is not None:
            return resolved.always
        provider, model = resolved.provider, resolved.model
        for start, override in resolved.overrides:
            if start is None or start <= used_utc:
                return override, "override", False, provider, model
        quote = resolved.quote
        rates = quote.select(used_utc) if quote is not None else None
        if quote is not None and rates is not None:
            if rates.output is not None or not output_tokens:
                return rates, "genai-prices", False, quote.provider, quote.model_ref
            why = f"genai-prices has {quote.model_ref!r} but no price for its output tokens"
        elif quote is not None:
            why = f"genai-prices has {quote.model_ref!r} but no price for its input tokens"
        else:
            why = f"genai-prices {genai_prices.__version__} has no price for it"
        if self._fallback is not None and self.policy.unknown_models == "flag":
            return self._fallback, "fallback", True, provider, model
        raise UnknownModelPrice(
            f"cannot price model {model!r} from provider {provider!r} used at "
            f"{used_utc.isoformat()}: {why}. Add an override to the pricing policy, e.g. "
            f"overrides[({provider!r}, {model!r})] = [ModelPrice(input_mtok=..., "
            "output_mtok=...)], or set unknown_models='flag' with a fallback price"
        )

    def cache_info(self) -> functools._CacheInfo:
        return self._resolve.cache_info()

    # -- lookups ----------------------------------------------------------------------------
    def _resolve_uncached(self, provider: str, model: str, day: date) -> _Resolved:
        provider, model = _name(provider, "provider"), _name(model, "model")
        overrides: tuple[tuple[datetime | None, _Rates], ...] = ()
        for (provider_pat, model_pat), prices in self._overrides:
            if fnmatchcase(provider, provider_pat) and fnmatchcase(model, model_pat):
                overrides = prices
                break
        quote = self._genai_quote(provider, model, day)
        return _Resolved(provider=provider, model=model, overrides=overrides, quote=quote)

    def _genai_quote(self, provider: str, model: str, day: date) -> _Quote | None:
        try:
            gp_provider, info = data_snapshot.get_snapshot().find_provider_model(
                model, None, provider, None
            )
        except LookupError:
            return None
        pct = self._discounts.get(provider, self.policy.discount_percent)
        factor = (100 - pct).scaleb(-2)
        options: list[tuple[gp.TimeOfDateConstraint | None, _Rates | None]] = []
        conditional = (
            [gp.ConditionalPrice(prices=info.prices)]
            if isinstance(info.prices, gp.ModelPrice)
            else info.prices
        )
        # genai-prices: the last price whose constraint holds wins, else the first price.
        for cond in reversed(conditional):
            rates = _rates(cond.prices, factor)
            c = cond.constraint
            if isinstance(c, gp.TimeOfDateConstraint):
                options.append((c, rates))
            elif c is None or c.start_date <= day:
                options.append((None, rates))
                break
        else:
            options.append((None, _rates(conditional[0].prices, factor)))
        return _Quote(provider=gp_provider.id, model_ref=info.id, options=tuple(options))


def _new_priced(
    nanousd: int,
    source: PriceSource,
    flagged: bool,
    provider: str,
    model_ref: str,
    parts: tuple[tuple[str, Decimal], ...],
) -> PricedUsage:
    return PricedUsage(Money(nanousd), source, flagged, provider, model_ref, parts)


def _by_start(prices: Sequence[ModelPrice]) -> tuple[tuple[datetime | None, _Rates], ...]:
    never = datetime.min.replace(tzinfo=UTC)
    ordered = sorted(prices, key=lambda p: p.effective_from or never, reverse=True)
    return tuple((p.effective_from, _override_rates(p)) for p in ordered)


def _has_wildcard(key: tuple[str, str]) -> bool:
    return any(ch in part for part in key for ch in "*?[")


def _name(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{what} must be a non-empty string like 'openai', got {value!r}")
    return value.strip().lower()


def _is_price(value: object) -> bool:
    return isinstance(value, Decimal) and value.is_finite() and value >= 0


def _check_percent(value: object, what: str) -> None:
    if not (_is_price(value) and isinstance(value, Decimal) and value <= 100):
        raise InvalidInput(f"{what} must be a Decimal from 0 to 100, got {value!r}")


def _require_aware(value: object, what: str) -> None:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidInput(
            f"{what} must be a timezone-aware datetime, got {value!r}; "
            "use datetime.now(UTC) or attach tzinfo=UTC"
        )
