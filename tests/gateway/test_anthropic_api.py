"""The Anthropic-compatible endpoints through the gateway, driven by the official SDK."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from tests.gateway.conftest import HAIKU, MESSAGES
from tests.gateway.fake_meter import GOOD_KEY, NARROW_KEY, FakeMeter
from tokenwage.core.usage import TokenUsage

CACHED_SYSTEM = "[mock:cache:5] [mock:cache-write:4] Be brief."


def test_messages_settle_with_the_providers_usage(
    claude: anthropic.Anthropic, direct_claude: anthropic.Anthropic, meter: FakeMeter
) -> None:
    message = claude.messages.create(
        model=HAIKU, max_tokens=100, system=CACHED_SYSTEM, messages=MESSAGES
    )
    direct = direct_claude.messages.create(
        model=HAIKU, max_tokens=100, system=CACHED_SYSTEM, messages=MESSAGES
    )
    assert message.content == direct.content
    (settled,) = meter.wait_settled()
    expected = TokenUsage.from_anthropic(direct.usage.model_dump())
    assert settled.usage == expected
    assert (expected.cache_read_tokens, expected.cache_write_tokens) == (5, 4)
    (facts,) = meter.authorized
    assert (facts.endpoint, facts.provider, facts.max_output_tokens) == (
        "anthropic.messages",
        "anthropic",
        100,
    )


def test_messages_stream_merges_start_and_delta_usage(
    claude: anthropic.Anthropic, meter: FakeMeter
) -> None:
    with claude.messages.stream(
        model=HAIKU, max_tokens=100, system=CACHED_SYSTEM, messages=MESSAGES
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert len(text.split()) == 12
    (settled,) = meter.wait_settled()
    assert not settled.estimated
    assert settled.usage == TokenUsage.from_anthropic(final.usage.model_dump())
    assert settled.usage.output_tokens == 12 and settled.usage.cache_read_tokens == 5


async def test_messages_stream_async_raw_events(gateway: str, meter: FakeMeter) -> None:
    async with anthropic.AsyncAnthropic(
        base_url=gateway, api_key=GOOD_KEY, max_retries=0
    ) as client:
        stream = await client.messages.create(
            model=HAIKU, max_tokens=5, messages=MESSAGES, stream=True
        )
        events = [event.type async for event in stream]
    assert events[0] == "message_start" and events[-1] == "message_stop"
    (settled,) = meter.wait_settled()
    assert settled.usage is not None and settled.usage.output_tokens == 5


def test_bearer_token_and_beta_query_as_claude_code_sends_them(
    gateway: str, meter: FakeMeter
) -> None:
    with anthropic.Anthropic(base_url=gateway, auth_token=GOOD_KEY, max_retries=0) as client:
        message = client.beta.messages.create(model=HAIKU, max_tokens=20, messages=MESSAGES)
        counted = client.beta.messages.count_tokens(model=HAIKU, messages=MESSAGES)
    assert message.usage.output_tokens == 12 and counted.input_tokens == 11
    (settled,) = meter.wait_settled()
    assert settled.usage is not None and settled.usage.input_tokens == 11


def test_count_tokens_is_free_but_needs_a_key(
    claude: anthropic.Anthropic,
    direct_claude: anthropic.Anthropic,
    gateway: str,
    meter: FakeMeter,
) -> None:
    tools: Any = [{"name": "f", "description": "d", "input_schema": {"type": "object"}}]
    counted = claude.messages.count_tokens(model=HAIKU, messages=MESSAGES, tools=tools)
    direct = direct_claude.messages.count_tokens(model=HAIKU, messages=MESSAGES, tools=tools)
    assert counted.input_tokens == direct.input_tokens
    assert meter.authorized == [] and meter.settled == [] and meter.authenticated == [GOOD_KEY]
    with anthropic.Anthropic(base_url=gateway, api_key="nope", max_retries=0) as stranger:
        with pytest.raises(anthropic.AuthenticationError):
            stranger.messages.count_tokens(model=HAIKU, messages=MESSAGES)


def test_models_in_anthropics_shape(gateway: str, direct_claude: anthropic.Anthropic) -> None:
    everything = [m.id for m in direct_claude.models.list()]
    with anthropic.Anthropic(base_url=gateway, api_key=GOOD_KEY, max_retries=0) as client:
        page = client.models.list()
        assert [m.id for m in page] == everything and page.has_more is False
        assert client.models.retrieve(everything[0]).id == everything[0]
    with anthropic.Anthropic(base_url=gateway, api_key=NARROW_KEY, max_retries=0) as client:
        assert [m.id for m in client.models.list()] == ["claude-haiku-4-5-20251001"]
