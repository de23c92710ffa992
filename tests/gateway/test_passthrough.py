"""What the client receives is what the provider sent, and settling comes before its last byte."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from tests.gateway.conftest import (
    CHAT,
    HAIKU,
    MESSAGES,
    ORG_KEY,
    SEED,
    Twins,
    fault,
    gateway_config,
    same_bytes,
)
from tests.gateway.fake_meter import GOOD_KEY, FakeMeter
from tokenwage.core.usage import TokenUsage
from tokenwage.gateway.estimate import output_tokens
from tokenwage.gateway.testing import start_gateway
from tokenwage.mock_upstream import MockConfig
from tokenwage.mock_upstream.testing import start_mock_upstream

ANTHROPIC_VERSION = {"anthropic-version": "2023-06-01"}
CASES: list[tuple[str, dict[str, Any], dict[str, str]]] = [
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": CHAT}, {}),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": CHAT, "stream": True}, {}),
    (
        "/v1/chat/completions",
        {
            "model": "o3",
            "messages": CHAT,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
        {},
    ),
    ("/v1/responses", {"model": "gpt-5", "input": "Hi tokens:30", "max_output_tokens": 16}, {}),
    ("/v1/responses", {"model": "gpt-4o", "input": "Hi tokens:30", "stream": True}, {}),
    ("/v1/embeddings", {"model": "text-embedding-3-small", "input": ["a b c", "d"]}, {}),
    ("/v1/messages", {"model": HAIKU, "max_tokens": 64, "messages": MESSAGES}, ANTHROPIC_VERSION),
    (
        "/v1/messages",
        {"model": HAIKU, "max_tokens": 64, "messages": MESSAGES, "stream": True},
        ANTHROPIC_VERSION,
    ),
    ("/v1/messages/count_tokens", {"model": HAIKU, "messages": MESSAGES}, ANTHROPIC_VERSION),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": CHAT}, fault("status-500")),
    (
        "/v1/messages",
        {"model": HAIKU, "max_tokens": 9, "messages": MESSAGES},
        {**fault("status-529"), **ANTHROPIC_VERSION},
    ),
    ("/v1/chat/completions", {"model": "unknown-model", "messages": CHAT}, {}),
]


def test_client_gets_the_providers_bytes(twins: Twins) -> None:
    with httpx2.Client(timeout=10) as client:
        for path, body, headers in CASES:
            anthropic_api = path.startswith("/v1/messages")
            auth = "x-api-key" if anthropic_api else "authorization"
            mine = GOOD_KEY if anthropic_api else f"Bearer {GOOD_KEY}"
            org = ORG_KEY if anthropic_api else f"Bearer {ORG_KEY}"
            via = client.post(f"{twins.gateway}{path}", json=body, headers={auth: mine, **headers})
            direct = client.post(f"{twins.direct}{path}", json=body, headers={auth: org, **headers})
            assert via.status_code == direct.status_code, (path, via.text)
            assert same_bytes(via.content) == same_bytes(direct.content), (path, body)
            assert via.headers["content-type"] == direct.headers["content-type"]
            assert via.headers["x-tokenwage-request-id"].startswith("twr_")
    settled = twins.meter.wait_settled(len(CASES) - 1)  # count_tokens is free
    assert [s.status for s in settled][-3:] == [500, 529, 404]
    assert all(s.usage is None for s in settled[-3:])  # errors: recorded, not charged
    assert all(s.usage is not None and not s.estimated for s in settled[:-3]), [
        (s.ticket.facts.endpoint, s.ticket.facts.stream, s.usage, s.estimated) for s in settled
    ]


@pytest.fixture
def slow_meter() -> Iterator[tuple[str, FakeMeter]]:
    """Streams that take ~250 ms upstream, and a meter that takes 200 ms to settle."""
    config = MockConfig(seed=SEED, expected_api_key=ORG_KEY, chunk_delay_ms=60)
    meter = FakeMeter(settle_delay_s=0.2)
    with start_mock_upstream(config) as mock, start_gateway(gateway_config(mock), meter) as url:
        yield url, meter


def test_stream_ends_only_after_settle_returned(slow_meter: tuple[str, FakeMeter]) -> None:
    url, meter = slow_meter
    marks: list[tuple[float, float]] = []
    with openai.OpenAI(base_url=f"{url}/v1", api_key=GOOD_KEY, max_retries=0) as oai:
        first = 0.0
        for chunk in oai.chat.completions.create(model="gpt-4o", messages=CHAT, stream=True):
            first = first or time.monotonic()
            assert chunk.usage is None
        marks.append((first, time.monotonic()))
        first = 0.0
        for _ in oai.responses.create(model="gpt-4o", input="Hi", stream=True):
            first = first or time.monotonic()
        marks.append((first, time.monotonic()))
    with anthropic.Anthropic(base_url=url, api_key=GOOD_KEY, max_retries=0) as claude:
        first = 0.0
        with claude.messages.stream(model=HAIKU, max_tokens=99, messages=MESSAGES) as stream:
            for _ in stream.text_stream:
                first = first or time.monotonic()
        marks.append((first, time.monotonic()))
    settled = meter.wait_settled(3)
    for (first_s, last_s), settle in zip(marks, settled, strict=True):
        assert first_s < settle.started_s  # the stream flowed before settling began
        assert last_s >= settle.done_s  # and ended only once settle had returned
        assert settle.done_s - settle.started_s >= 0.19  # loops may wake a hair early
        assert settle.usage is not None and not settle.estimated


def test_client_gone_mid_stream_still_settles_real_usage() -> None:
    config = MockConfig(seed=SEED, expected_api_key=ORG_KEY, chunk_delay_ms=40, stream_chunks=6)
    meter = FakeMeter()
    with start_mock_upstream(config) as mock, start_gateway(gateway_config(mock), meter) as url:
        body = {"model": "gpt-4o", "messages": CHAT, "stream": True}
        with httpx2.Client(timeout=10) as client:
            headers = {"authorization": f"Bearer {GOOD_KEY}"}
            with client.stream("POST", f"{url}/v1/chat/completions", json=body, headers=headers):
                pass  # headers read, then the client hangs up
            (settled,) = meter.wait_settled()
            direct = client.post(
                f"{mock}/v1/chat/completions",
                json={"model": "gpt-4o", "messages": CHAT},
                headers={"authorization": f"Bearer {ORG_KEY}"},
            ).json()
    assert not settled.estimated and settled.status == 200
    assert settled.usage == TokenUsage.from_openai_chat(direct["usage"])


def test_stream_cut_upstream_settles_an_estimate(
    oai: openai.OpenAI, claude: anthropic.Anthropic, meter: FakeMeter
) -> None:
    text = ""
    with pytest.raises(openai.APIConnectionError):
        for chunk in oai.chat.completions.create(
            model="gpt-4o", messages=CHAT, stream=True, extra_headers=fault("drop-mid-stream")
        ):
            text += chunk.choices[0].delta.content or "" if chunk.choices else ""
    assert text  # some of the answer came through before the cut
    (chat,) = meter.wait_settled()
    prompt_estimate = meter.authorized[0].prompt_tokens_estimate
    assert chat.estimated and chat.status == 200
    assert chat.usage == TokenUsage(
        input_tokens=prompt_estimate, output_tokens=output_tokens(len(text))
    )
    # anthropic 2.17 wraps the cut in APIConnectionError; earlier releases let httpx's through
    cut = (httpx2.TransportError, anthropic.APIConnectionError)
    with pytest.raises(cut, match="incomplete chunked read"):
        with claude.messages.stream(
            model=HAIKU, max_tokens=99, messages=MESSAGES, extra_headers=fault("drop-mid-stream")
        ) as stream:
            list(stream.text_stream)
    _, message = meter.wait_settled(2)
    assert message.estimated and message.usage is not None
    assert message.usage.input_tokens == 11  # from message_start: 4 + 4 + 3, not estimated
    assert 0 < message.usage.output_tokens < 12


def test_stream_without_usage_settles_an_estimate(oai: openai.OpenAI, meter: FakeMeter) -> None:
    chunks = list(
        oai.chat.completions.create(
            model="gpt-4o", messages=CHAT, stream=True, extra_headers=fault("no-usage")
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    (settled,) = meter.wait_settled()
    assert settled.estimated
    assert settled.usage == TokenUsage(
        input_tokens=meter.authorized[0].prompt_tokens_estimate, output_tokens=12
    )
    assert output_tokens(len(text)) == 12


def test_whole_answer_cut_or_without_usage(oai: openai.OpenAI, meter: FakeMeter) -> None:
    with pytest.raises(openai.InternalServerError) as cut:
        oai.chat.completions.create(
            model="gpt-4o", messages=CHAT, extra_headers=fault("drop-mid-stream")
        )
    assert cut.value.status_code == 502
    reply = oai.chat.completions.create(
        model="gpt-4o", messages=CHAT, extra_headers=fault("no-usage")
    )
    assert reply.usage is None
    broken, unreported = meter.wait_settled(2)
    assert broken.estimated and broken.status == 502
    assert broken.usage == TokenUsage(input_tokens=meter.authorized[0].prompt_tokens_estimate)
    assert unreported.estimated and unreported.status == 200
    assert unreported.usage is not None and unreported.usage.output_tokens > 0


def test_upstream_errors_pass_through_and_settle_without_usage(
    oai: openai.OpenAI, claude: anthropic.Anthropic, meter: FakeMeter
) -> None:
    with pytest.raises(openai.InternalServerError) as chat_error:
        oai.chat.completions.create(
            model="gpt-4o", messages=CHAT, extra_headers=fault("status-500")
        )
    assert chat_error.value.request_id is not None  # the provider's x-request-id came through
    with pytest.raises(anthropic.APIStatusError) as overloaded:
        claude.messages.create(
            model=HAIKU, max_tokens=9, messages=MESSAGES, extra_headers=fault("status-529")
        )
    assert overloaded.value.status_code == 529
    assert overloaded.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
        "request_id": overloaded.value.request_id,
    }
    settled = meter.wait_settled(2)
    assert [(s.status, s.usage) for s in settled] == [(500, None), (529, None)]
    assert meter.cancelled == []


def test_error_event_mid_stream_is_held_until_settled(
    oai: openai.OpenAI, claude: anthropic.Anthropic, meter: FakeMeter
) -> None:
    with pytest.raises(openai.APIError, match="The server had an error"):
        list(
            oai.chat.completions.create(
                model="gpt-4o", messages=CHAT, stream=True, extra_headers=fault("error-mid-stream")
            )
        )
    with pytest.raises(anthropic.APIStatusError, match="overloaded_error"):
        with claude.messages.stream(
            model=HAIKU, max_tokens=99, messages=MESSAGES, extra_headers=fault("error-mid-stream")
        ) as stream:
            list(stream.text_stream)
    chat, message = meter.wait_settled(2)
    assert chat.estimated and message.estimated  # no final usage report came
    assert message.usage is not None and message.usage.input_tokens == 11
