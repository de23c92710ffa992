"""The simulated provider, driven over real loopback HTTP by the official SDKs."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import openai
import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tokenwage.cli.mock_upstream import register
from tokenwage.mock_upstream import MockConfig
from tokenwage.mock_upstream.testing import start_mock_upstream
from tokenwage.mock_upstream.tokens import answer_chunks, answer_text, cache_tokens

HAIKU = "claude-haiku-4-5"
# "Be brief." + "Say hi tokens:12" = 25 chars: ceil(25/4) + 4 * 2 messages + 3 = 18 tokens.
SYSTEM, PROMPT, PROMPT_TOKENS = "Be brief.", "Say hi tokens:12", 18
CHAT: Any = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]
ANTHROPIC_MESSAGES: Any = [{"role": "user", "content": PROMPT}]
WEATHER_SCHEMA: Any = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "days": {"type": "integer"},
        "unit": {"type": "string", "enum": ["c", "f"]},
    },
    "required": ["city"],
}
WEATHER_ARGS = {"city": "mock"}  # the required properties only, as a careful model would


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with start_mock_upstream(MockConfig(seed=7)) as url:
        yield url


@pytest.fixture
def oai(base_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{base_url}/v1", api_key="sk-test", max_retries=0) as client:
        yield client


@pytest.fixture
def claude(base_url: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=base_url, api_key="sk-ant-test", max_retries=0) as client:
        yield client


def raw_request(
    url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), json.loads(error.read())


# --- OpenAI chat completions ---------------------------------------------------------------


def test_chat_usage_follows_the_documented_formula(oai: openai.OpenAI) -> None:
    first = oai.chat.completions.create(model="gpt-4o", messages=CHAT)
    again = oai.chat.completions.create(model="gpt-4o", messages=CHAT)
    assert first.usage is not None and again.usage is not None
    assert (first.usage.prompt_tokens, first.usage.completion_tokens) == (PROMPT_TOKENS, 12)
    assert first.usage.total_tokens == PROMPT_TOKENS + 12
    assert first.usage.model_dump() == again.usage.model_dump()
    text = first.choices[0].message.content
    assert text == again.choices[0].message.content
    assert text is not None and len(text.split()) == 12 and -(-len(text) // 4) == 12
    assert first.choices[0].finish_reason == "stop"
    assert first.id.startswith("chatcmpl-") and first.id != again.id


def test_chat_default_output_is_a_hash_of_the_prompt(oai: openai.OpenAI) -> None:
    text = "Tell me about owls."
    reply = oai.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": text}]
    )
    prompt_tokens = -(-len(text) // 4) + 4 + 3
    assert reply.usage is not None and reply.usage.prompt_tokens == prompt_tokens
    assert reply.usage.completion_tokens == 16 + (zlib.crc32(text.encode()) + prompt_tokens) % 48


def test_chat_stream_with_usage_chunk(oai: openai.OpenAI) -> None:
    whole = oai.chat.completions.create(model="gpt-4o", messages=CHAT)
    chunks = list(
        oai.chat.completions.create(
            model="gpt-4o", messages=CHAT, stream=True, stream_options={"include_usage": True}
        )
    )
    contents = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(contents) == 5
    assert "".join(contents) == whole.choices[0].message.content
    assert chunks[-2].choices[0].finish_reason == "stop"
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None and whole.usage is not None
    assert last.usage.model_dump() == whole.usage.model_dump()
    assert all(c.usage is None for c in chunks[:-1])


def test_chat_stream_without_include_usage_has_no_usage(oai: openai.OpenAI) -> None:
    chunks = list(oai.chat.completions.create(model="gpt-4o", messages=CHAT, stream=True))
    assert chunks and all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize(("model", "reasoning"), [("o3", 3), ("gpt-5-mini", 3), ("gpt-4o", 0)])
def test_reasoning_tokens_for_reasoning_models(
    oai: openai.OpenAI, model: str, reasoning: int
) -> None:
    reply = oai.chat.completions.create(model=model, messages=CHAT)
    assert reply.usage is not None and reply.usage.completion_tokens_details is not None
    assert reply.usage.completion_tokens == 12
    assert reply.usage.completion_tokens_details.reasoning_tokens == reasoning
    assert len((reply.choices[0].message.content or "").split()) == 12 - reasoning


def test_cache_convention_in_openai_and_anthropic(
    oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    system = "[mock:cache:5] [mock:cache-write:4] Be brief."  # 45 + 16 chars: 16 + 8 + 3 = 27
    reply = oai.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "system", "content": system}, {"role": "user", "content": PROMPT}],
    )
    assert reply.usage is not None and reply.usage.prompt_tokens_details is not None
    assert reply.usage.prompt_tokens == 27
    assert reply.usage.prompt_tokens_details.cached_tokens == 5
    message = claude.messages.create(
        model=HAIKU, max_tokens=100, system=system, messages=ANTHROPIC_MESSAGES
    )
    usage = message.usage
    assert (usage.input_tokens, usage.cache_read_input_tokens) == (27 - 5 - 4, 5)
    assert usage.cache_creation_input_tokens == 4
    counted = claude.messages.count_tokens(model=HAIKU, system=system, messages=ANTHROPIC_MESSAGES)
    assert counted.input_tokens == 27


def test_max_tokens_cuts_the_answer(oai: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    long_prompt: Any = [{"role": "user", "content": "tokens:50"}]
    reply = oai.chat.completions.create(model="gpt-4o", messages=long_prompt, max_tokens=10)
    assert reply.usage is not None and reply.usage.completion_tokens == 10
    assert reply.choices[0].finish_reason == "length"
    message = claude.messages.create(model=HAIKU, max_tokens=10, messages=long_prompt)
    assert (message.usage.output_tokens, message.stop_reason) == (10, "max_tokens")
    response = oai.responses.create(model="gpt-4o", input="tokens:50", max_output_tokens=16)
    assert response.status == "incomplete" and response.usage is not None
    assert response.incomplete_details is not None
    assert (response.incomplete_details.reason, response.usage.output_tokens) == (
        "max_output_tokens",
        16,
    )


# --- OpenAI responses and embeddings ------------------------------------------------------


def test_responses_usage_matches_chat(oai: openai.OpenAI) -> None:
    response = oai.responses.create(model="gpt-4o", instructions=SYSTEM, input=PROMPT)
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (PROMPT_TOKENS, 12)
    assert response.usage.total_tokens == PROMPT_TOKENS + 12
    assert response.usage.output_tokens_details.reasoning_tokens == 0
    assert len(response.output_text.split()) == 12
    assert response.id.startswith("resp_") and response.status == "completed"


def test_responses_stream_event_sequence(oai: openai.OpenAI) -> None:
    events = list(oai.responses.create(model="gpt-4o", input=PROMPT, stream=True))
    names = [event.type for event in events]
    assert names == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * 5,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    completed = events[-1]
    assert completed.type == "response.completed" and completed.response.usage is not None
    assert completed.response.usage.output_tokens == 12
    assert completed.response.usage.input_tokens_details.cached_tokens == 0


def test_responses_stream_helper_and_reasoning_item(oai: openai.OpenAI) -> None:
    with oai.responses.stream(model="o4-mini", input=PROMPT) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert "".join(deltas) == final.output_text
    assert final.usage is not None and final.usage.output_tokens_details.reasoning_tokens == 3


def test_embeddings_float_and_base64(oai: openai.OpenAI) -> None:
    texts = ["a cat", "dogs and owls"]  # ceil(5/4) + ceil(13/4) = 2 + 4
    floats = oai.embeddings.create(
        model="text-embedding-3-small", input=texts, encoding_format="float"
    )
    packed = oai.embeddings.create(model="text-embedding-3-small", input=texts)  # base64
    assert floats.usage.prompt_tokens == floats.usage.total_tokens == 6
    assert [len(d.embedding) for d in floats.data] == [16, 16]
    for a, b in zip(floats.data, packed.data, strict=True):
        assert a.embedding == pytest.approx(b.embedding, rel=1e-6)
    assert floats.data[0].embedding != floats.data[1].embedding
    sized = oai.embeddings.create(model="text-embedding-3-large", input=[1, 2, 3], dimensions=64)
    assert len(sized.data[0].embedding) == 64 and sized.usage.prompt_tokens == 3


def test_models_lists(oai: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    assert "gpt-4o" in [m.id for m in oai.models.list()]
    assert oai.models.retrieve("gpt-4o").id == "gpt-4o"
    assert HAIKU + "-20251001" in [m.id for m in claude.models.list()]
    with pytest.raises(openai.NotFoundError):
        oai.models.retrieve("unknown-model")
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.create(model="unknown-claude", max_tokens=5, messages=ANTHROPIC_MESSAGES)


# --- Anthropic messages --------------------------------------------------------------------


def test_messages_usage_and_text(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model=HAIKU, max_tokens=100, system=SYSTEM, messages=ANTHROPIC_MESSAGES
    )
    assert (message.usage.input_tokens, message.usage.output_tokens) == (PROMPT_TOKENS, 12)
    assert message.usage.cache_read_input_tokens == 0
    assert message.stop_reason == "end_turn" and message.id.startswith("msg_")
    block = message.content[0]
    assert block.type == "text" and len(block.text.split()) == 12
    counted = claude.messages.count_tokens(model=HAIKU, system=SYSTEM, messages=ANTHROPIC_MESSAGES)
    assert counted.input_tokens == PROMPT_TOKENS


def test_messages_stream_helper(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model=HAIKU, max_tokens=100, system=SYSTEM, messages=ANTHROPIC_MESSAGES
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) == 5
    assert final.usage.input_tokens == PROMPT_TOKENS and final.usage.output_tokens == 12
    assert final.content[0].type == "text" and final.content[0].text == "".join(pieces)


def test_messages_raw_event_sequence(claude: anthropic.Anthropic) -> None:
    events = list(
        claude.messages.create(
            model=HAIKU, max_tokens=100, messages=ANTHROPIC_MESSAGES, stream=True
        )
    )
    names = [event.type for event in events]
    assert names == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 5,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]  # the SDK swallows ``ping``
    start, delta = events[0], events[-2]
    assert start.type == "message_start" and start.message.usage.output_tokens == 1
    assert delta.type == "message_delta" and delta.usage.output_tokens == 12


def test_async_clients_stream() -> None:
    async def run(url: str) -> tuple[int, int]:
        async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0) as oai:
            stream = await oai.chat.completions.create(
                model="gpt-4o", messages=CHAT, stream=True, stream_options={"include_usage": True}
            )
            usage = [chunk.usage async for chunk in stream if chunk.usage is not None]
        async with anthropic.AsyncAnthropic(base_url=url, api_key="k", max_retries=0) as claude:
            async with claude.messages.stream(
                model=HAIKU, max_tokens=100, system=SYSTEM, messages=ANTHROPIC_MESSAGES
            ) as message_stream:
                message = await message_stream.get_final_message()
            plain = await claude.messages.create(
                model=HAIKU, max_tokens=100, system=SYSTEM, messages=ANTHROPIC_MESSAGES
            )
        assert plain.usage.output_tokens == message.usage.output_tokens
        return usage[0].completion_tokens, message.usage.output_tokens

    with start_mock_upstream() as url:
        assert asyncio.run(run(url)) == (12, 12)


# --- tools ---------------------------------------------------------------------------------


def test_tool_calls_in_all_three_shapes(oai: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    ask = "Please use tool get_weather"
    chat = oai.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": ask}],
        tools=[
            {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_SCHEMA}}
        ],
    )
    call = chat.choices[0].message.tool_calls
    assert chat.choices[0].finish_reason == "tool_calls" and call is not None
    assert call[0].type == "function" and call[0].function.name == "get_weather"
    assert json.loads(call[0].function.arguments) == WEATHER_ARGS
    function_tools: Any = [
        {"type": "function", "name": "get_weather", "parameters": WEATHER_SCHEMA}
    ]
    response = oai.responses.create(model="gpt-4o", input=ask, tools=function_tools)
    item = response.output[0]
    assert item.type == "function_call" and json.loads(item.arguments) == WEATHER_ARGS
    tools: Any = [{"name": "get_weather", "description": "w", "input_schema": WEATHER_SCHEMA}]
    with claude.messages.stream(
        model=HAIKU, max_tokens=200, tools=tools, messages=[{"role": "user", "content": ask}]
    ) as stream:
        message = stream.get_final_message()
    block = message.content[0]
    assert message.stop_reason == "tool_use"
    assert block.type == "tool_use" and block.input == WEATHER_ARGS
    history: Any = [
        {"role": "user", "content": ask},
        {"role": "assistant", "content": [block.model_dump()]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id}]},
    ]
    follow_up = claude.messages.create(model=HAIKU, max_tokens=200, tools=tools, messages=history)
    assert follow_up.stop_reason == "end_turn" and follow_up.content[0].type == "text"


def test_chat_tool_call_streams_arguments(oai: openai.OpenAI) -> None:
    chunks = list(
        oai.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "use tool"}],
            tools=[{"type": "function", "function": {"name": "f", "parameters": WEATHER_SCHEMA}}],
            stream=True,
        )
    )
    calls = [c.choices[0].delta.tool_calls for c in chunks if c.choices[0].delta.tool_calls]
    assert calls[0][0].id is not None and calls[0][0].function is not None
    arguments = "".join((call[0].function.arguments or "") for call in calls if call[0].function)
    assert json.loads(arguments) == WEATHER_ARGS
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


# --- errors --------------------------------------------------------------------------------


def test_validation_errors_parse_into_sdk_exceptions(
    oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    with pytest.raises(openai.BadRequestError) as chat_error:
        oai.chat.completions.create(model="gpt-4o", messages=[])
    assert chat_error.value.code == "empty_array" and chat_error.value.param == "messages"
    with pytest.raises(openai.BadRequestError) as missing:
        oai.chat.completions.create(model="gpt-4o", messages=None)  # type: ignore[call-overload]
    assert missing.value.code == "missing_required_parameter"
    with pytest.raises(openai.BadRequestError, match="minimum value"):
        oai.responses.create(model="gpt-4o", input="hi", max_output_tokens=8)
    with pytest.raises(openai.BadRequestError, match="stream_options"):
        oai.chat.completions.create(
            model="gpt-4o", messages=CHAT, stream_options={"include_usage": True}
        )
    with pytest.raises(anthropic.BadRequestError, match="max_tokens: Field required") as error:
        # the SDK refuses to send this itself, so go through its generic POST
        no_max_tokens = {"model": HAIKU, "messages": ANTHROPIC_MESSAGES}
        claude.post("/v1/messages", body=no_max_tokens, cast_to=anthropic.types.Message)
    assert error.value.body == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"},
        "request_id": error.value.response.headers["request-id"],
    }


def test_raw_error_shapes(base_url: str) -> None:
    status, headers, body = raw_request(f"{base_url}/v1/chat/completions", {"messages": CHAT})
    assert status == 401 and headers["x-request-id"].startswith("req_")
    assert set(body["error"]) == {"message", "type", "param", "code"}
    bearer = {"Authorization": "Bearer k", "Content-Type": "application/json"}
    status, _, body = raw_request(f"{base_url}/v1/chat/completions", {"messages": CHAT}, bearer)
    assert status == 400 and body["error"]["message"] == "you must provide a model parameter"
    status, _, body = raw_request(f"{base_url}/v1/nope", {}, bearer)
    assert status == 404 and body["error"]["message"] == "Invalid URL (POST /v1/nope)"
    request = {"model": HAIKU, "max_tokens": 5, "messages": ANTHROPIC_MESSAGES}
    status, headers, body = raw_request(f"{base_url}/v1/messages", request, {"x-api-key": "k"})
    assert status == 400 and body["error"]["message"] == "anthropic-version: header is required"
    assert body["request_id"] == headers["request-id"]
    status, _, body = raw_request(f"{base_url}/v1/messages", request)
    assert (status, body["error"]["type"]) == (401, "authentication_error")
    status, _, body = raw_request(f"{base_url}/health")
    assert (status, body) == (200, {"status": "ok"})


def test_expected_api_key() -> None:
    with start_mock_upstream(MockConfig(expected_api_key="sk-right")) as url:
        with openai.OpenAI(base_url=f"{url}/v1", api_key="sk-wrong-key", max_retries=0) as oai:
            with pytest.raises(openai.AuthenticationError) as error:
                oai.models.list()
        assert error.value.code == "invalid_api_key"
        with anthropic.Anthropic(base_url=url, api_key="sk-wrong", max_retries=0) as claude:
            with pytest.raises(anthropic.AuthenticationError):
                claude.messages.count_tokens(model=HAIKU, messages=ANTHROPIC_MESSAGES)
        with anthropic.Anthropic(base_url=url, api_key="sk-right", max_retries=0) as claude:
            assert claude.messages.count_tokens(model=HAIKU, messages=ANTHROPIC_MESSAGES)


# --- faults --------------------------------------------------------------------------------


def fault(name: str) -> dict[str, str]:
    return {"x-mock-fault": name}


def test_forced_statuses(oai: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        claude.messages.create(
            model=HAIKU,
            max_tokens=5,
            messages=ANTHROPIC_MESSAGES,
            extra_headers=fault("status-529"),
        )
    assert overloaded.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    with pytest.raises(anthropic.RateLimitError):
        claude.messages.create(
            model=HAIKU,
            max_tokens=5,
            messages=ANTHROPIC_MESSAGES,
            extra_headers=fault("status-429"),
        )
    with pytest.raises(openai.RateLimitError) as limited:
        oai.chat.completions.create(
            model="gpt-4o", messages=CHAT, extra_headers=fault("status-429")
        )
    assert limited.value.response.headers["retry-after"] == "1"
    with pytest.raises(openai.InternalServerError):
        oai.chat.completions.create(
            model="gpt-4o", messages=CHAT, extra_headers=fault("status-500")
        )
    with pytest.raises(openai.BadRequestError, match="unknown x-mock-fault 'bogus'"):
        oai.chat.completions.create(model="gpt-4o", messages=CHAT, extra_headers=fault("bogus"))


def test_drop_mid_stream(oai: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    received = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in oai.chat.completions.create(
            model="gpt-4o", messages=CHAT, stream=True, extra_headers=fault("drop-mid-stream")
        ):
            received.append(chunk)
    assert len(received) == 4  # the role chunk and 3 of the 5 content chunks
    with pytest.raises(openai.APIConnectionError):
        oai.chat.completions.create(
            model="gpt-4o", messages=CHAT, extra_headers=fault("drop-mid-stream")
        )
    # anthropic 2.17 wraps the cut in APIConnectionError; earlier releases let httpx's through
    cut = (httpx2.TransportError, anthropic.APIConnectionError)
    with pytest.raises(cut, match="incomplete chunked read"):
        with claude.messages.stream(
            model=HAIKU,
            max_tokens=100,
            messages=ANTHROPIC_MESSAGES,
            extra_headers=fault("drop-mid-stream"),
        ) as stream:
            list(stream.text_stream)


def test_error_mid_stream(oai: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    with pytest.raises(openai.APIError, match="The server had an error"):
        list(
            oai.chat.completions.create(
                model="gpt-4o", messages=CHAT, stream=True, extra_headers=fault("error-mid-stream")
            )
        )
    events = list(
        oai.responses.create(
            model="gpt-4o", input=PROMPT, stream=True, extra_headers=fault("error-mid-stream")
        )
    )
    assert events[-1].type == "error"
    with pytest.raises(anthropic.APIStatusError, match="overloaded_error"):
        with claude.messages.stream(
            model=HAIKU,
            max_tokens=100,
            messages=ANTHROPIC_MESSAGES,
            extra_headers=fault("error-mid-stream"),
        ) as stream:
            list(stream.text_stream)


def test_no_usage(oai: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    chunks = list(
        oai.chat.completions.create(
            model="gpt-4o",
            messages=CHAT,
            stream=True,
            stream_options={"include_usage": True},
            extra_headers=fault("no-usage"),
        )
    )
    assert chunks and all(chunk.usage is None for chunk in chunks)
    reply = oai.chat.completions.create(
        model="gpt-4o", messages=CHAT, extra_headers=fault("no-usage")
    )
    assert reply.usage is None
    response = oai.responses.create(model="gpt-4o", input=PROMPT, extra_headers=fault("no-usage"))
    assert response.usage is None
    raw = claude.messages.with_raw_response.create(
        model=HAIKU, max_tokens=10, messages=ANTHROPIC_MESSAGES, extra_headers=fault("no-usage")
    )
    assert "usage" not in json.loads(raw.read())


def outcomes(url: str, count: int) -> list[int]:
    statuses = []
    with openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0) as oai:
        for _ in range(count):
            try:
                oai.chat.completions.create(model="gpt-4o", messages=CHAT)
                statuses.append(200)
            except openai.APIStatusError as error:
                statuses.append(error.status_code)
    return statuses


def test_error_rate_is_seeded() -> None:
    config = MockConfig(error_rate=0.5, seed=11)
    with start_mock_upstream(config) as url:
        first = outcomes(url, 30)
    with start_mock_upstream(config) as url:
        second = outcomes(url, 30)
    assert first == second
    assert 200 in first and set(first) - {200} <= {500, 503, 429} and len(set(first)) > 2
    with start_mock_upstream(MockConfig(error_rate=1.0)) as url:
        assert 200 not in outcomes(url, 10)


# --- ids, latency --------------------------------------------------------------------------


def first_ids(seed: int) -> tuple[str, str]:
    with start_mock_upstream(MockConfig(seed=seed)) as url:
        with openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0) as oai:
            raw = oai.chat.completions.with_raw_response.create(model="gpt-4o", messages=CHAT)
            return raw.headers["x-request-id"], raw.parse().id


def test_ids_are_deterministic_per_seed(claude: anthropic.Anthropic) -> None:
    request_id, body_id = first_ids(3)
    assert (request_id, body_id) == first_ids(3)
    assert request_id.removeprefix("req_") == body_id.removeprefix("chatcmpl-")
    assert first_ids(4) != (request_id, body_id)
    raw = claude.messages.with_raw_response.create(
        model=HAIKU, max_tokens=5, messages=ANTHROPIC_MESSAGES
    )
    assert raw.parse().id == "msg_" + raw.headers["request-id"].removeprefix("req_")


def test_latency_and_chunk_delay() -> None:
    with start_mock_upstream(MockConfig(latency_ms=150, chunk_delay_ms=60, stream_chunks=4)) as url:
        with anthropic.Anthropic(base_url=url, api_key="k", max_retries=0) as claude:
            started = time.perf_counter()
            claude.messages.count_tokens(model=HAIKU, messages=ANTHROPIC_MESSAGES)
            assert time.perf_counter() - started >= 0.15
            started = time.perf_counter()
            with claude.messages.stream(
                model=HAIKU, max_tokens=100, messages=ANTHROPIC_MESSAGES
            ) as stream:
                pieces = list(stream.text_stream)
            assert len(pieces) == 4
            assert time.perf_counter() - started >= 0.15 + 3 * 0.06


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="error_rate"):
        MockConfig(error_rate=1.5)
    with pytest.raises(ValueError, match="stream_chunks"):
        MockConfig(stream_chunks=0)
    config = MockConfig(latency_ms=2, seed=5, expected_api_key="s")
    assert MockConfig.from_json(config.to_json()) == config
    assert "expected_api_key" not in repr(config)
    with pytest.raises(ValueError, match="unknown MockConfig keys"):
        MockConfig.from_json(b'{"latency": 1}')


# --- answer text ---------------------------------------------------------------------------


@settings(database=None, max_examples=200)
@given(st.integers(min_value=1, max_value=3000), st.integers(min_value=0), st.integers(1, 40))
def test_answer_text_holds_its_token_count(tokens: int, salt: int, pieces: int) -> None:
    text = answer_text(tokens, salt)
    assert -(-len(text) // 4) == tokens == len(text.split())
    chunks = answer_chunks(tokens, salt, pieces)
    assert "".join(chunks) == text and len(chunks) == min(pieces, tokens) and all(chunks)


@pytest.mark.parametrize(
    ("system", "expected"),
    [
        ("", (0, 0)),
        ("Use the [mock:cache]", (50, 0)),
        ("[mock:cache-write] please", (0, 50)),
        ("Use the cache", (0, 0)),  # Codex's real prompt says "cache": no magic there
        ("cache:30 cache-write:20", (0, 0)),
        ("[MOCK:CACHE:30] [mock:cache 30] mock:cache:30", (0, 0)),
        ("[mock:cache:30]", (30, 0)),
        ("[mock:cache:30] [mock:cache-write:20]", (30, 20)),
        ("[mock:cache:90] [mock:cache-write:20]", (90, 10)),
        ("[mock:cache:500]", (100, 0)),
    ],
)
def test_cache_conventions(system: str, expected: tuple[int, int]) -> None:
    assert cache_tokens(system, 100) == expected


# --- CLI -----------------------------------------------------------------------------------


def cli_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """tokenwage (test harness)."""

    register(app)
    return app


def test_cli_help_and_bad_option() -> None:
    runner = CliRunner()
    result = runner.invoke(cli_app(), ["mock-upstream", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--latency-ms", "--chunk-delay-ms", "--stream-chunks", "--error-rate"):
        assert option in result.output
    result = runner.invoke(cli_app(), ["mock-upstream", "--error-rate", "2"])
    assert result.exit_code == 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


CLI_SCRIPT = """
import sys, typer
from tokenwage.cli.mock_upstream import register
if __name__ == "__main__":  # worker processes are spawned, and re-import __main__
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    app(sys.argv[1:])
"""


@pytest.mark.parametrize("workers", [1, 2])
def test_cli_serves_over_http(workers: int) -> None:
    port = free_port()
    argv = ["mock-upstream", "--port", str(port), "--seed", "3", "--workers", str(workers)]
    with subprocess.Popen(
        [sys.executable, "-c", CLI_SCRIPT, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    ) as process:
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 20
            while True:
                try:
                    assert raw_request(f"{url}/health")[0] == 200
                    break
                except (urllib.error.URLError, ConnectionError):
                    assert process.poll() is None and time.monotonic() < deadline
                    time.sleep(0.05)
            with openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0) as oai:
                for _ in range(4):
                    reply = oai.chat.completions.create(model="gpt-4o", messages=CHAT)
                    assert reply.usage is not None and reply.usage.completion_tokens == 12
        finally:
            process.terminate()
            output, _ = process.communicate(timeout=20)
    assert b"Uvicorn running" in output or b"Started" in output
