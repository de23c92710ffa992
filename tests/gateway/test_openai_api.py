"""The OpenAI-compatible endpoints through the gateway, driven by the official SDK."""

from __future__ import annotations

import openai
import pytest

from tests.gateway.conftest import CHAT
from tests.gateway.fake_meter import GOOD_KEY, NARROW_KEY, FakeMeter
from tokenwage.core.usage import TokenUsage


def test_chat_is_settled_with_the_providers_usage(
    oai: openai.OpenAI, direct_oai: openai.OpenAI, meter: FakeMeter
) -> None:
    reply = oai.chat.completions.create(model="gpt-4o", messages=CHAT, max_tokens=50)
    direct = direct_oai.chat.completions.create(model="gpt-4o", messages=CHAT, max_tokens=50)
    assert reply.choices[0].message.content == direct.choices[0].message.content
    assert reply.usage is not None and direct.usage is not None
    (settled,) = meter.wait_settled()
    assert settled.usage == TokenUsage.from_openai_chat(direct.usage.model_dump())
    assert settled.usage == TokenUsage(input_tokens=reply.usage.prompt_tokens, output_tokens=12)
    assert (settled.status, settled.estimated) == (200, False)
    (facts,) = meter.authorized
    assert (facts.endpoint, facts.provider, facts.model) == ("openai.chat", "openai", "gpt-4o")
    assert (facts.stream, facts.max_output_tokens) == (False, 50)
    assert facts.request_id.startswith("twr_") and facts.prompt_tokens_estimate > 0
    assert meter.cancelled == []


def test_request_id_comes_back(oai: openai.OpenAI, meter: FakeMeter) -> None:
    raw = oai.chat.completions.with_raw_response.create(model="gpt-4o", messages=CHAT)
    assert raw.headers["x-tokenwage-request-id"] == meter.authorized[0].request_id
    assert raw.headers["x-request-id"].startswith("req_")  # the provider's, passed on
    assert "server" not in raw.headers


def test_chat_stream_without_usage_option_hides_the_usage_it_asked_for(
    oai: openai.OpenAI, meter: FakeMeter
) -> None:
    chunks = list(oai.chat.completions.create(model="gpt-4o", messages=CHAT, stream=True))
    assert chunks and all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all("usage" not in c.model_dump(exclude_unset=True) for c in chunks)
    (settled,) = meter.wait_settled()
    assert settled.usage is not None and not settled.estimated
    assert settled.usage.output_tokens == 12
    assert meter.authorized[0].stream is True


async def test_chat_stream_with_usage_option_async(gateway: str, meter: FakeMeter) -> None:
    async with openai.AsyncOpenAI(
        base_url=f"{gateway}/v1", api_key=GOOD_KEY, max_retries=0
    ) as client:
        stream = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=CHAT,
            stream=True,
            stream_options={"include_usage": True},
            max_completion_tokens=7,
        )
        chunks = [chunk async for chunk in stream]
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    (settled,) = meter.wait_settled()
    assert settled.usage == TokenUsage.from_openai_chat(last.usage.model_dump())
    assert settled.usage.output_tokens == 7
    assert meter.authorized[0].max_output_tokens == 7


def test_responses(oai: openai.OpenAI, meter: FakeMeter) -> None:
    response = oai.responses.create(
        model="gpt-5-mini", instructions="Be brief.", input="Hi tokens:20", max_output_tokens=64
    )
    assert response.usage is not None
    events = list(oai.responses.create(model="gpt-5-mini", input="Hi tokens:20", stream=True))
    assert events[-1].type == "response.completed"
    whole, streamed = meter.wait_settled(2)
    assert whole.usage == TokenUsage.from_openai_responses(response.usage.model_dump())
    assert whole.usage.reasoning_tokens > 0
    final = events[-1].response.usage
    assert final is not None
    assert streamed.usage == TokenUsage.from_openai_responses(final.model_dump())
    assert not whole.estimated and not streamed.estimated
    assert [f.max_output_tokens for f in meter.authorized] == [64, None]
    assert [f.endpoint for f in meter.authorized] == ["openai.responses"] * 2


async def test_responses_stream_async(gateway: str, meter: FakeMeter) -> None:
    async with openai.AsyncOpenAI(
        base_url=f"{gateway}/v1", api_key=GOOD_KEY, max_retries=0
    ) as client:
        async with client.responses.stream(model="gpt-4o", input="Hi tokens:9") as stream:
            final = await stream.get_final_response()
    assert final.usage is not None and final.usage.output_tokens == 9
    (settled,) = meter.wait_settled()
    assert settled.usage == TokenUsage.from_openai_responses(final.usage.model_dump())


def test_embeddings(oai: openai.OpenAI, meter: FakeMeter) -> None:
    result = oai.embeddings.create(model="text-embedding-3-small", input=["abcdefgh", "xy"])
    assert len(result.data) == 2
    (settled,) = meter.wait_settled()
    assert settled.usage == TokenUsage(input_tokens=result.usage.prompt_tokens)
    assert meter.authorized[0].max_output_tokens == 0


def test_models_are_filtered_by_the_keys_allow_list(
    gateway: str, direct_oai: openai.OpenAI, meter: FakeMeter
) -> None:
    everything = [m.id for m in direct_oai.models.list()]
    with openai.OpenAI(base_url=f"{gateway}/v1", api_key=GOOD_KEY, max_retries=0) as client:
        assert [m.id for m in client.models.list()] == everything
        assert client.models.retrieve("gpt-4o").id == "gpt-4o"
    with openai.OpenAI(base_url=f"{gateway}/v1", api_key=NARROW_KEY, max_retries=0) as client:
        assert [m.id for m in client.models.list()] == ["gpt-4o-mini"]
        with pytest.raises(openai.NotFoundError):
            client.models.retrieve("gpt-4o")
    assert meter.authorized == [] and meter.settled == []  # free: authenticated only
    assert meter.authenticated == [GOOD_KEY] * 2 + [NARROW_KEY] * 2


def test_downgrade_rewrites_the_model(oai: openai.OpenAI, meter: FakeMeter) -> None:
    meter.downgrades["gpt-5"] = "gpt-5-mini"
    reply = oai.chat.completions.create(model="gpt-5", messages=CHAT)
    assert reply.model == "gpt-5-mini"  # what the provider was asked for
    (settled,) = meter.wait_settled()
    assert settled.ticket.model == "gpt-5-mini" and settled.ticket.facts.model == "gpt-5"
