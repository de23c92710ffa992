"""Token usage normalisation and pricing: hand-computed costs, policy rules, invariants.

Expected amounts are worked out by hand from the prices in the bundled genai-prices data
(USD per million tokens), so a change in that data or in our mapping makes these fail.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import genai_prices
import pytest
from genai_prices.data import providers as gp_providers
from genai_prices.types import ModelPrice as GPModelPrice
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenwage.core.errors import InvalidInput, UnknownModelPrice
from tokenwage.core.money import Money
from tokenwage.core.pricing import ModelPrice, PricedUsage, Pricer, PricingPolicy, to_genai_usage
from tokenwage.core.usage import TokenUsage

JULY_2025 = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)
SONNET_4 = ("anthropic", "claude-sonnet-4-20250514")
M = 1_000_000


def nano(usd: str) -> Money:
    return Money.parse(usd)


@pytest.fixture
def pricer() -> Pricer:
    return Pricer(PricingPolicy())


# -- TokenUsage ---------------------------------------------------------------------------
def test_usage_adds_fieldwise_and_totals_each_token_once() -> None:
    a = TokenUsage(1, 20, 300, 4000, 50000, 10)
    b = TokenUsage(input_tokens=2, output_tokens=3, reasoning_tokens=1)
    assert a + b == TokenUsage(3, 23, 300, 4000, 50000, 11)
    assert a.total_tokens == 1 + 20 + 300 + 4000 + 50000  # reasoning is inside output


@pytest.mark.parametrize("bad", [-1, 1.0, True, "5", Decimal(5), None])
def test_usage_refuses_negative_and_non_int_counts(bad: Any) -> None:
    with pytest.raises(InvalidInput, match="cache_read_tokens"):
        TokenUsage(cache_read_tokens=bad)


def test_usage_refuses_reasoning_outside_output() -> None:
    with pytest.raises(InvalidInput, match=r"reasoning_tokens \(5\) exceeds output_tokens \(4\)"):
        TokenUsage(output_tokens=4, reasoning_tokens=5)


OPENAI_CHAT_USAGE = {  # a real response's shape
    "prompt_tokens": 12_345, "completion_tokens": 678, "total_tokens": 13_023,
    "prompt_tokens_details": {"cached_tokens": 10_000, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 600, "audio_tokens": 0},
}  # fmt: skip


def test_openai_chat_subtracts_cached_tokens_and_keeps_reasoning_in_output() -> None:
    usage = TokenUsage.from_openai_chat(OPENAI_CHAT_USAGE)
    assert usage == TokenUsage(
        input_tokens=2_345, cache_read_tokens=10_000, output_tokens=678, reasoning_tokens=600
    )
    assert usage.total_tokens == OPENAI_CHAT_USAGE["total_tokens"]


def test_openai_chat_missing_and_null_fields_are_zero() -> None:
    assert TokenUsage.from_openai_chat({"prompt_tokens": 7, "prompt_tokens_details": None}) == (
        TokenUsage(input_tokens=7)
    )
    assert TokenUsage.from_openai_chat({}) == TokenUsage()


def test_openai_responses() -> None:
    usage = TokenUsage.from_openai_responses({
        "input_tokens": 5_000, "input_tokens_details": {"cached_tokens": 4_096},
        "output_tokens": 900, "output_tokens_details": {"reasoning_tokens": 512},
        "total_tokens": 5_900,
    })  # fmt: skip
    assert usage == TokenUsage(
        input_tokens=904, cache_read_tokens=4_096, output_tokens=900, reasoning_tokens=512
    )


def test_anthropic_with_and_without_cache_creation_breakdown() -> None:
    plain = {"input_tokens": 10, "output_tokens": 500, "cache_creation_input_tokens": 2_000}
    plain["cache_read_input_tokens"] = 30_000
    assert TokenUsage.from_anthropic(plain) == TokenUsage(
        input_tokens=10, output_tokens=500, cache_read_tokens=30_000, cache_write_tokens=2_000
    )
    split = plain | {
        "cache_creation": {"ephemeral_5m_input_tokens": 1_500, "ephemeral_1h_input_tokens": 500}
    }
    assert TokenUsage.from_anthropic(split) == TokenUsage(  # in, out, read, 5m, 1h
        10, 500, 30_000, 1_500, 500
    )


@pytest.mark.parametrize(
    ("parse", "usage", "field"),
    [
        (TokenUsage.from_openai_chat, {"prompt_tokens": "12"}, "'prompt_tokens'"),
        (
            TokenUsage.from_openai_chat,
            {"prompt_tokens": 9, "prompt_tokens_details": {"cached_tokens": 1.5}},
            "'prompt_tokens_details.cached_tokens'",
        ),
        (TokenUsage.from_openai_chat, {"prompt_tokens_details": 3}, "'prompt_tokens_details'"),
        (TokenUsage.from_openai_chat, {"prompt_tokens": 5, "completion_tokens": -1}, "completion"),
        (TokenUsage.from_openai_chat, {"prompt_tokens": True}, "'prompt_tokens'"),
        (TokenUsage.from_openai_responses, {"output_tokens": None, "input_tokens": [1]}, "input"),
        (TokenUsage.from_anthropic, {"cache_read_input_tokens": "x"}, "cache_read_input_tokens"),
        (
            TokenUsage.from_anthropic,
            {"cache_creation": {"ephemeral_1h_input_tokens": 2.0}},
            "'cache_creation.ephemeral_1h_input_tokens'",
        ),
    ],
)
def test_provider_usage_with_wrong_types_names_the_field(
    parse: Any, usage: Any, field: str
) -> None:
    with pytest.raises(InvalidInput, match=field):
        parse(usage)


def test_inconsistent_provider_reports_are_refused() -> None:
    with pytest.raises(InvalidInput, match=r"cached_tokens \(11\) exceeds prompt_tokens \(10\)"):
        TokenUsage.from_openai_chat(
            {"prompt_tokens": 10, "prompt_tokens_details": {"cached_tokens": 11}}
        )
    with pytest.raises(InvalidInput, match="exceed cache_creation_input_tokens"):
        TokenUsage.from_anthropic(
            {"cache_creation_input_tokens": 5, "cache_creation": {"ephemeral_1h_input_tokens": 6}}
        )
    with pytest.raises(InvalidInput, match="must be a JSON object"):
        TokenUsage.from_anthropic([1, 2])  # type: ignore[arg-type]


# -- genai-prices, hand computed ----------------------------------------------------------
SONNET_USAGE = TokenUsage(
    input_tokens=1_000, output_tokens=2_000, cache_read_tokens=10_000,
    cache_write_tokens=4_000, cache_write_1h_tokens=500,
)  # fmt: skip
# claude-sonnet-4: $3 in, $15 out, $0.30 cache read, $3.75 5-minute write, $6 1-hour write
SONNET_EXPECTED = {
    "input": nano("0.003"),  # 1,000 x $3 / 1M
    "cache_read": nano("0.003"),  # 10,000 x $0.30 / 1M
    "cache_write": nano("0.015"),  # 4,000 x $3.75 / 1M
    "cache_write_1h": nano("0.003"),  # 500 x $6 / 1M
    "output": nano("0.03"),  # 2,000 x $15 / 1M
}


def test_claude_sonnet_4_with_cache_reads_and_both_cache_writes(pricer: Pricer) -> None:
    priced = pricer.price(SONNET_USAGE, *SONNET_4, JULY_2025)
    assert priced.cost == nano("0.054")
    assert priced.detail == SONNET_EXPECTED
    assert (priced.source, priced.flagged) == ("genai-prices", False)
    assert (priced.provider, priced.model_ref) == ("anthropic", "claude-sonnet-4-0")


def test_our_mapping_onto_genai_prices_usage_gives_the_same_hand_computed_total() -> None:
    calc = genai_prices.calc_price(
        to_genai_usage(SONNET_USAGE),
        SONNET_4[1],
        provider_id="anthropic",
        genai_request_timestamp=JULY_2025,
    )
    assert calc.total_price == Decimal("0.054")


def test_gpt_4o_from_openai_chat_usage(pricer: Pricer) -> None:
    usage = TokenUsage.from_openai_chat(OPENAI_CHAT_USAGE)
    priced = pricer.price(usage, "openai", "gpt-4o", JULY_2025)
    # 2,345 x $2.50 + 10,000 x $1.25 + 678 x $10, per million
    assert priced.cost == nano("0.0058625") + nano("0.0125") + nano("0.00678")
    assert priced.cost == Money(25_142_500)


def test_price_in_force_on_the_day_of_use(pricer: Pricer) -> None:
    million_each = TokenUsage(input_tokens=M, output_tokens=M)
    before = datetime(2025, 6, 9, 23, 59, 59, tzinfo=UTC)
    after = datetime(2025, 6, 10, 0, 0, tzinfo=UTC)
    assert pricer.price(million_each, "openai", "o3", before).cost == nano("50")  # $10 + $40
    assert pricer.price(million_each, "openai", "o3", after).cost == nano("10")  # $2 + $8
    # 01:00 at UTC+5 is still 9 June in UTC
    east = datetime(2025, 6, 10, 1, 0, tzinfo=timezone(timedelta(hours=5)))
    assert pricer.price(million_each, "openai", "o3", east).cost == nano("50")


def test_time_of_day_prices_are_not_frozen_by_the_daily_cache(pricer: Pricer) -> None:
    million_in = TokenUsage(input_tokens=M)
    peak = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)
    off_peak = datetime(2025, 7, 1, 20, 0, tzinfo=UTC)
    assert pricer.price(million_in, "deepseek", "deepseek-chat", peak).cost == nano("0.27")
    assert pricer.price(million_in, "deepseek", "deepseek-chat", off_peak).cost == nano("0.135")


def test_tiered_prices_switch_on_the_whole_prompt(pricer: Pricer) -> None:
    def cost(input_tokens: int) -> Money:
        usage = TokenUsage(input_tokens=input_tokens, cache_read_tokens=50_000, output_tokens=1_000)
        return pricer.price(usage, "anthropic", "claude-sonnet-4-5", JULY_2025).cost

    assert cost(150_000) == nano("0.45") + nano("0.015") + nano("0.015")
    # 200,001 prompt tokens: every token at the long-context price ($6, $0.60, $22.50)
    assert cost(150_001) == nano("0.900006") + nano("0.03") + nano("0.0225")


def test_reasoning_is_priced_once_inside_output(pricer: Pricer) -> None:
    with_reasoning = TokenUsage(input_tokens=10, output_tokens=1_000, reasoning_tokens=900)
    without = TokenUsage(input_tokens=10, output_tokens=1_000)
    assert (
        pricer.price(with_reasoning, "openai", "gpt-4o", JULY_2025).cost
        == pricer.price(without, "openai", "gpt-4o", JULY_2025).cost
    )
    # sonar-deep-research prices reasoning apart: 100 x $8 + 900 x $3, per million
    deep = pricer.price(with_reasoning, "perplexity", "sonar-deep-research", JULY_2025)
    assert deep.cost == nano("0.00002") + nano("0.0008") + nano("0.0027")


def test_total_is_rounded_once_not_per_kind() -> None:
    half_a_nanousd = ModelPrice(input_mtok=Decimal("0.0005"), output_mtok=Decimal("0.0005"))
    pricer = Pricer(PricingPolicy(overrides={("local", "tiny"): [half_a_nanousd]}))
    priced = pricer.price(TokenUsage(input_tokens=1, output_tokens=1), "local", "tiny", JULY_2025)
    assert priced.cost == Money(1)  # 0.5 + 0.5; rounding each half to even would give 0
    assert priced.detail == {"input": Money(0), "output": Money(0)}


def _token_priced_models() -> list[tuple[str, str]]:
    found = []
    for provider in gp_providers:
        for model in provider.models:
            prices = model.prices
            listed = [prices] if isinstance(prices, GPModelPrice) else [c.prices for c in prices]
            per_request = any(p.requests_kcount is not None for p in listed)
            has_input = all(p.input_mtok is not None for p in listed)
            # some ids (e.g. aws "regional.*") are not matched by their own match rules
            if has_input and not per_request and model.is_match(model.id):
                found.append((provider.id, model.id))
    return found


TOKEN_PRICED = _token_priced_models()


def test_every_genai_prices_model_agrees_with_calc_price(pricer: Pricer) -> None:
    usage = TokenUsage(123_457, 0, 45_679, 8_765, 4_321)
    assert len(TOKEN_PRICED) > 1_000
    for provider, model in TOKEN_PRICED:
        for when in (JULY_2025, datetime(2026, 12, 2, 3, 4, tzinfo=UTC)):
            expected = genai_prices.calc_price(
                to_genai_usage(usage), model, provider_id=provider, genai_request_timestamp=when
            ).total_price
            ours = pricer.price(usage, provider, model, when).cost
            assert ours == Money.from_decimal(expected), (provider, model, when)


usages = st.builds(
    lambda i, o, cr, cw, c1, frac: TokenUsage(i, o, cr, cw, c1, o * frac // 100),
    *[st.integers(0, 2_000_000)] * 5,
    st.integers(0, 100),
)
instants = st.datetimes(datetime(2023, 1, 1), datetime(2028, 1, 1), timezones=st.just(UTC))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(TOKEN_PRICED), usages, instants)
def test_property_matches_calc_price_for_any_model_usage_and_time(
    model: tuple[str, str], usage: TokenUsage, when: datetime
) -> None:
    provider, model_ref = model
    try:
        ours = Pricer(PricingPolicy()).price(usage, provider, model_ref, when)
    except UnknownModelPrice:  # a model without an output price, asked to price output
        assert usage.output_tokens > 0
        return
    expected = genai_prices.calc_price(
        to_genai_usage(usage), model_ref, provider_id=provider, genai_request_timestamp=when
    ).total_price
    assert ours.cost == Money.from_decimal(expected)


# -- policy -------------------------------------------------------------------------------
def test_override_beats_genai_prices_and_exact_key_beats_wildcard() -> None:
    policy = PricingPolicy(
        overrides={
            ("anthropic", "claude-*"): [ModelPrice(Decimal("1"), Decimal("1"))],
            ("Anthropic", "Claude-Sonnet-4-20250514"): [ModelPrice(Decimal("2"), Decimal("4"))],
        }
    )
    usage = TokenUsage(input_tokens=M, output_tokens=M, cache_read_tokens=M)
    priced = Pricer(policy).price(usage, *SONNET_4, JULY_2025)
    assert priced.cost == nano("8")  # cache reads fall back to the input price
    assert (priced.source, priced.model_ref) == ("override", "claude-sonnet-4-20250514")
    other = Pricer(policy).price(usage, "anthropic", "claude-opus-4-1", JULY_2025)
    assert other.cost == nano("3")


def test_override_prices_change_over_time() -> None:
    self_hosted = [
        ModelPrice(Decimal("2"), Decimal("6"), effective_from=datetime(2025, 3, 1, tzinfo=UTC)),
        ModelPrice(Decimal("1"), Decimal("3"), effective_from=datetime(2025, 1, 1, tzinfo=UTC)),
        ModelPrice(Decimal("4"), Decimal("9"), effective_from=datetime(2025, 3, 1, 12, tzinfo=UTC)),
    ]
    pricer = Pricer(PricingPolicy(overrides={("vllm", "llama-*"): self_hosted}))
    usage = TokenUsage(input_tokens=M, output_tokens=M)

    def cost(when: datetime) -> Money:
        return pricer.price(usage, "vllm", "llama-3.1-70b", when).cost

    assert cost(datetime(2025, 2, 28, 23, 59, tzinfo=UTC)) == nano("4")
    assert cost(datetime(2025, 3, 1, 11, 59, tzinfo=UTC)) == nano("8")
    assert cost(datetime(2025, 3, 1, 12, 0, tzinfo=UTC)) == nano("13")
    with pytest.raises(UnknownModelPrice):  # before any override and unknown to genai-prices
        cost(datetime(2024, 12, 31, tzinfo=UTC))


def test_discount_applies_to_genai_prices_only_and_per_provider() -> None:
    usage = TokenUsage(input_tokens=M, output_tokens=M)
    policy = PricingPolicy(
        discount_percent=Decimal("10"),
        provider_discount_percent={"Anthropic": Decimal("12.5")},
        overrides={("local", "*"): [ModelPrice(Decimal("1"), Decimal("1"))]},
    )
    pricer = Pricer(policy)
    assert pricer.price(usage, "openai", "gpt-4o", JULY_2025).cost == nano("11.25")  # 90% of 12.5
    assert pricer.price(usage, *SONNET_4, JULY_2025).cost == nano("15.75")  # 87.5% of 18
    assert pricer.price(usage, "local", "x", JULY_2025).cost == nano("2")


def test_unknown_model_is_rejected_with_the_fix_in_the_message(pricer: Pricer) -> None:
    with pytest.raises(UnknownModelPrice) as caught:
        pricer.price(TokenUsage(input_tokens=1), "openai", "gpt-imaginary-9", JULY_2025)
    message = str(caught.value)
    assert "'gpt-imaginary-9'" in message and "'openai'" in message
    assert "overrides[('openai', 'gpt-imaginary-9')]" in message
    with pytest.raises(UnknownModelPrice, match="'no-such-cloud'"):
        pricer.price(TokenUsage(input_tokens=1), "no-such-cloud", "gpt-4o", JULY_2025)


def test_unknown_model_is_flagged_at_the_fallback_price_never_zero() -> None:
    fallback = ModelPrice(input_mtok=Decimal("30"), output_mtok=Decimal("60"))
    pricer = Pricer(PricingPolicy(unknown_models="flag", fallback=fallback))
    priced = pricer.price(TokenUsage(input_tokens=M, output_tokens=M), "x", "y", JULY_2025)
    assert (priced.cost, priced.source, priced.flagged) == (nano("90"), "fallback", True)
    # even a zero-token usage of an unknown model is flagged, so it shows up for review
    assert pricer.price(TokenUsage(), "x", "y", JULY_2025).flagged


def test_model_without_an_output_price_is_unknown_only_when_output_is_used(pricer: Pricer) -> None:
    embed = pricer.price(TokenUsage(input_tokens=M), "openai", "text-embedding-3-small", JULY_2025)
    assert embed.cost == nano("0.02")
    with pytest.raises(UnknownModelPrice, match="no price for its output tokens"):
        pricer.price(TokenUsage(output_tokens=1), "openai", "text-embedding-3-small", JULY_2025)


def test_worst_case_takes_the_dearest_input_side_price(pricer: Pricer) -> None:
    hold = pricer.worst_case_cost(
        "openai", "gpt-4o", JULY_2025, prompt_tokens_estimate=M, max_output_tokens=M
    )
    assert hold.cost == nano("12.5")
    claude = pricer.worst_case_cost(
        *SONNET_4, JULY_2025, prompt_tokens_estimate=M, max_output_tokens=1_000
    )
    assert claude.cost == nano("6.015")  # a 1-hour cache write of the prompt ($6) + $0.015


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: PricingPolicy(discount_percent=Decimal("101")), "discount_percent"),
        (lambda: PricingPolicy(discount_percent=10.0), "discount_percent"),  # type: ignore[arg-type]
        (lambda: PricingPolicy(unknown_models="flag"), "fallback"),
        (lambda: PricingPolicy(unknown_models="ignore"), "'ignore'"),  # type: ignore[arg-type]
        (lambda: ModelPrice(Decimal(1), 2.5), "output_mtok"),  # type: ignore[arg-type]
        (lambda: ModelPrice(Decimal(-1), Decimal(1)), "input_mtok"),
        (lambda: ModelPrice(Decimal(1), Decimal(1), effective_from=datetime(2025, 1, 1)), "aware"),
        (lambda: PricingPolicy(overrides={("a", "b"): []}), "non-empty"),
    ],
)
def test_bad_policies_are_refused(make: Any, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        make()


def test_naive_time_of_use_is_refused(pricer: Pricer) -> None:
    with pytest.raises(InvalidInput, match="timezone-aware"):
        pricer.price(TokenUsage(), "openai", "gpt-4o", datetime(2025, 7, 1))


def test_lookups_are_cached_per_provider_model_and_day(pricer: Pricer) -> None:
    for minute in range(100):
        pricer.price(SONNET_USAGE, *SONNET_4, JULY_2025 + timedelta(minutes=minute))
    info = pricer.cache_info()
    assert (info.misses, info.hits) == (1, 99)


# -- invariants ---------------------------------------------------------------------------
FLAT_PRICED = [("openai", "gpt-4o"), SONNET_4, ("vllm", "llama-3.1-8b")]
FLAT_POLICY = PricingPolicy(
    discount_percent=Decimal("7.5"),
    overrides={("vllm", "*"): [ModelPrice(Decimal("0.0123"), Decimal("0.0456"), Decimal("0.001"))]},
)
FIELDS = [f.name for f in dataclasses.fields(TokenUsage) if f.name != "reasoning_tokens"]


@settings(deadline=None)
@given(
    st.sampled_from(FLAT_PRICED),
    usages,
    st.sampled_from(FIELDS),
    st.integers(1, 1_000_000),
    instants,
)
def test_cost_never_falls_when_any_token_count_rises(
    model: tuple[str, str], usage: TokenUsage, field: str, extra: int, when: datetime
) -> None:
    pricer = Pricer(FLAT_POLICY)
    more = dataclasses.replace(usage, **{field: getattr(usage, field) + extra})
    assert pricer.price(more, *model, when).cost >= pricer.price(usage, *model, when).cost


@settings(deadline=None)
@given(st.sampled_from(FLAT_PRICED), usages, usages, instants)
def test_cost_is_additive_within_one_nanousd(
    model: tuple[str, str], a: TokenUsage, b: TokenUsage, when: datetime
) -> None:
    pricer = Pricer(FLAT_POLICY)
    apart = pricer.price(a, *model, when).cost + pricer.price(b, *model, when).cost
    together = pricer.price(a + b, *model, when).cost
    assert abs(apart.nanousd - together.nanousd) <= 1


def _assert_no_floats(value: object) -> None:
    assert not isinstance(value, float), value
    if isinstance(value, dict):
        for k, v in value.items():
            _assert_no_floats(k)
            _assert_no_floats(v)
    elif isinstance(value, tuple | list):
        for item in value:
            _assert_no_floats(item)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _assert_no_floats(getattr(value, f.name))


@settings(deadline=None)
@given(st.sampled_from(FLAT_PRICED + [("deepseek", "deepseek-chat")]), usages, instants)
def test_no_float_anywhere_in_a_result(
    model: tuple[str, str], usage: TokenUsage, when: datetime
) -> None:
    pricer = Pricer(FLAT_POLICY)
    for priced in (
        pricer.price(usage, *model, when),
        pricer.worst_case_cost(*model, when, prompt_tokens_estimate=9, max_output_tokens=9),
    ):
        assert isinstance(priced, PricedUsage)
        _assert_no_floats(priced)
        _assert_no_floats(priced.detail)
        assert all(type(usd) is Decimal for _, usd in priced.parts_usd)
        assert type(priced.cost.nanousd) is int
