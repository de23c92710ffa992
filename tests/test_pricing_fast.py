"""The integer fast path of pricing gives exactly what the Decimal computation gave.

The reference below is the Decimal arithmetic ``Pricer`` used before the fast path: exact
``Decimal`` parts per kind of token, their ``Decimal`` sum, rounded once by
:meth:`Money.from_decimal`; and for ``worst_case_cost``, the dearest of the three candidate
usages. Results are compared whole, with each part's exact digits and exponent.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Context, Decimal, Inexact, InvalidOperation, Rounded, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenwage.core.errors import InvalidInput, UnknownModelPrice
from tokenwage.core.money import Money
from tokenwage.core.pricing import ModelPrice, PricedUsage, Pricer, PricingPolicy
from tokenwage.core.pricing_fast import FlatPlan, TieredPlan, TieredRate, plan_for
from tokenwage.core.usage import TokenUsage

MODELS = [
    ("openai", "gpt-4o"),
    ("openai", "o3"),  # its price changed on 2025-06-10
    ("anthropic", "claude-sonnet-4-20250514"),  # cache writes dearer than input
    ("anthropic", "claude-sonnet-4-5"),  # tiered: long-context prices above 200k prompt tokens
    ("google", "gemini-2.5-pro"),  # tiered
    ("deepseek", "deepseek-chat"),  # time-of-day prices
    ("perplexity", "sonar-deep-research"),  # reasoning priced apart from output
    ("openai", "text-embedding-3-small"),  # no output price
    ("vllm", "llama-3.1-8b"),  # override only
    ("local", "odd"),  # override with awkward digits
    ("nowhere", "unknown-model"),  # unknown: rejected, or flagged at the fallback
]
POLICIES = [
    PricingPolicy(),
    PricingPolicy(
        discount_percent=Decimal("7.5"),
        provider_discount_percent={"Anthropic": Decimal("12.345"), "google": Decimal("33")},
        overrides={
            ("vllm", "*"): [
                ModelPrice(Decimal("0.0123"), Decimal("0.0456"), Decimal("0.001")),
                ModelPrice(
                    Decimal("7"), Decimal("9"), effective_from=datetime(2025, 3, 1, tzinfo=UTC)
                ),
            ],
            ("local", "odd"): [
                ModelPrice(
                    Decimal("0.0000000000001"),
                    Decimal("1E+3"),
                    cache_write_mtok=Decimal("7.77777"),
                    cache_write_1h_mtok=Decimal("0.3"),
                )
            ],
        },
        unknown_models="flag",
        fallback=ModelPrice(Decimal("30.5"), Decimal("60.25")),
    ),
]
counts = st.one_of(
    st.just(0), st.integers(0, 300_000), st.integers(0, 2_000_000), st.integers(0, 10**16)
)
usages = st.builds(
    lambda i, o, cr, cw, c1, frac: TokenUsage(i, o, cr, cw, c1, o * frac // 100),
    *[counts] * 5,
    st.integers(0, 100),
)
instants = st.datetimes(datetime(2024, 1, 1), datetime(2027, 1, 1), timezones=st.just(UTC))
# the thread's decimal context: at precision 12 the Decimal path rounds early (or fails), and
# with a trap on Inexact or Rounded its final rounding raises; the fast path must do the same
contexts = st.sampled_from(
    [
        Context(prec=28),
        Context(prec=28),
        Context(prec=40),
        Context(prec=12),
        Context(prec=28, traps=[InvalidOperation, Inexact]),
        Context(prec=28, traps=[InvalidOperation, Rounded]),
    ]
)


def reference_price(
    pricer: Pricer, usage: TokenUsage, provider: str, model: str, when: datetime
) -> PricedUsage:
    rates, source, flagged, provider, ref = pricer._lookup(
        provider, model, when, usage.output_tokens
    )
    prompt = usage.prompt_tokens if rates.tiered else 0
    output = usage.output_tokens
    found: list[tuple[str, int, Decimal | TieredRate | None]] = [
        ("input", usage.input_tokens, rates.input),
        ("cache_read", usage.cache_read_tokens, rates.cache_read),
        ("cache_write", usage.cache_write_tokens, rates.cache_write),
        ("cache_write_1h", usage.cache_write_1h_tokens, rates.cache_write_1h),
    ]
    if rates.reasoning is not None:
        found.append(("reasoning", usage.reasoning_tokens, rates.reasoning))
        output -= usage.reasoning_tokens
    found.append(("output", output, rates.output))
    parts = []
    for kind, tokens, rate in found:
        if tokens and rate is not None:
            per_token = rate if isinstance(rate, Decimal) else rate.at(prompt)
            parts.append((kind, per_token * tokens))
    total = sum((usd for _, usd in parts), Decimal(0))
    return PricedUsage(Money.from_decimal(total), source, flagged, provider, ref, tuple(parts))


def reference_worst_case(
    pricer: Pricer, provider: str, model: str, when: datetime, prompt: int, output: int
) -> PricedUsage:
    candidates = [
        TokenUsage(**{kind: prompt}, output_tokens=output)
        for kind in ("input_tokens", "cache_write_tokens", "cache_write_1h_tokens")
    ]
    priced = [reference_price(pricer, u, provider, model, when) for u in candidates]
    return max(priced, key=lambda p: p.cost)


def outcome(call: Callable[[], PricedUsage]) -> object:
    try:
        priced = call()
    except (UnknownModelPrice, ArithmeticError) as e:  # the latter from some contexts
        return (type(e).__name__, str(e))
    assert type(priced) is PricedUsage and type(priced.cost) is Money
    assert type(priced.cost.nanousd) is int
    exact = tuple((kind, str(usd), usd.as_tuple()) for kind, usd in priced.parts_usd)
    return priced, exact, repr(priced)


PRICERS = [Pricer(policy) for policy in POLICIES]


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(PRICERS), st.sampled_from(MODELS), usages, instants, contexts)
def test_price_equals_the_decimal_computation(
    pricer: Pricer, model: tuple[str, str], usage: TokenUsage, when: datetime, context: Context
) -> None:
    with localcontext(context):
        fast = outcome(lambda: pricer.price(usage, *model, when))
        slow = outcome(lambda: reference_price(pricer, usage, *model, when))
    assert fast == slow


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(PRICERS), st.sampled_from(MODELS), counts, counts, instants, contexts)
def test_worst_case_equals_the_dearest_of_the_three_decimal_candidates(
    pricer: Pricer,
    model: tuple[str, str],
    prompt: int,
    output: int,
    when: datetime,
    context: Context,
) -> None:
    with localcontext(context):
        fast = outcome(
            lambda: pricer.worst_case_cost(
                *model, when, prompt_tokens_estimate=prompt, max_output_tokens=output
            )
        )
        slow = outcome(lambda: reference_worst_case(pricer, *model, when, prompt, output))
    assert fast == slow


@settings(max_examples=500, deadline=None)
@given(
    st.integers(0, 10**6),
    st.integers(-20, 3),
    st.integers(0, 10**9),
    st.sampled_from([None, Decimal("0.5")]),
)
def test_integer_rounding_is_the_one_rounding_rule(
    coefficient: int, exponent: int, tokens: int, other: Decimal | None
) -> None:
    """Ties included: 5E-10 USD a token is half a nanousd."""
    rate = Decimal(coefficient).scaleb(exponent)
    plan = plan_for([rate, rate, rate, rate, other, None], tiered=False)
    assert isinstance(plan, FlatPlan)
    parts, nanousd = plan.price(TokenUsage(input_tokens=tokens))
    assert nanousd == Money.from_decimal(rate * tokens).nanousd
    assert parts == ((("input", rate * tokens),) if tokens else ())


def test_tier_bands_switch_after_each_start() -> None:
    low, mid, high = Decimal("0.000001"), Decimal("0.0000015"), Decimal("0.000002")
    output = TieredRate(base=low, tiers=((300_000, high), (200_000, mid)))
    cache_read = TieredRate(base=low, tiers=((250_000, high),))
    plan = plan_for([low, cache_read, low, low, output, None], tiered=True)
    assert isinstance(plan, TieredPlan)
    for prompt in [0, 199_999, 200_000, 200_001, 250_000, 250_001, 300_000, 300_001, 10**9]:
        flat = plan.at(prompt)
        assert (flat.output, flat.cache_read) == (output.at(prompt), cache_read.at(prompt))


@pytest.mark.parametrize("tokens", [10**12, 10**17])
def test_huge_usage_takes_the_decimal_sum(tokens: int) -> None:
    pricer = Pricer(PricingPolicy())
    usage = TokenUsage(input_tokens=tokens, output_tokens=tokens, cache_read_tokens=tokens)
    when = datetime(2025, 7, 1, tzinfo=UTC)
    assert pricer.price(usage, "openai", "gpt-4o", when) == reference_price(
        pricer, usage, "openai", "gpt-4o", when
    )


@pytest.mark.parametrize(
    ("prompt", "output", "match"),
    [(-1, 5, "input_tokens"), (True, 5, "input_tokens"), (5, 1.0, "output_tokens")],
)
def test_worst_case_refuses_bad_counts_first(prompt: object, output: object, match: str) -> None:
    naive = datetime(2025, 7, 1)  # refused too, but the counts are checked first
    with pytest.raises(InvalidInput, match=f"TokenUsage.{match} must be"):
        Pricer(PricingPolicy()).worst_case_cost(
            "openai",
            "gpt-4o",
            naive,
            prompt_tokens_estimate=prompt,  # type: ignore[arg-type]
            max_output_tokens=output,  # type: ignore[arg-type]
        )
