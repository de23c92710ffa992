"""Stream taps and body readers, on streams recorded from the mock provider."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx2
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.gateway.conftest import CHAT, HAIKU, MESSAGES, ORG_KEY, same_bytes
from tokenwage.core.usage import TokenUsage
from tokenwage.gateway import usage_tap
from tokenwage.gateway.estimate import IMAGE_TOKENS, max_output_tokens, prompt_tokens
from tokenwage.gateway.usage_tap import (
    ChatTap,
    MessagesTap,
    ResponsesTap,
    StreamTap,
    json_usage,
)

Recorded = dict[str, bytes]
_CHUNK_ID = re.compile(rb'"id":"chatcmpl-[0-9a-f]+"')


def anonymous(stream: bytes) -> bytes:
    """Without the parts that differ between two requests: ids and timestamps."""
    return same_bytes(_CHUNK_ID.sub(b'"id":"chatcmpl-x"', stream))


TERMINAL = {
    "chat": b"data: [DONE]\n\n",
    "chat_usage": b"data: [DONE]\n\n",
    "responses": b"event: response.completed\n",
    "messages": b'event: message_stop\ndata: {"type":"message_stop"}\n\n',
}


def _post(client: httpx2.Client, url: str, path: str, body: Any) -> bytes:
    headers = {"authorization": f"Bearer {ORG_KEY}", "anthropic-version": "2023-06-01"}
    reply = client.post(f"{url}{path}", json=body, headers=headers)
    assert reply.status_code == 200, reply.text
    return reply.content


@pytest.fixture(scope="module")
def recorded(mock_url: str) -> Recorded:
    with httpx2.Client(timeout=10) as client:
        stream: Any = {"stream": True}
        usage: Any = {"stream_options": {"include_usage": True}}
        chat = {"model": "o3", "messages": CHAT, **stream}
        return {
            "chat": _post(client, mock_url, "/v1/chat/completions", chat),
            "chat_usage": _post(client, mock_url, "/v1/chat/completions", {**chat, **usage}),
            "chat_whole": _post(
                client, mock_url, "/v1/chat/completions", {**chat, "stream": False}
            ),
            "responses": _post(
                client, mock_url, "/v1/responses", {"model": "gpt-5", "input": "x", **stream}
            ),
            "messages": _post(
                client,
                mock_url,
                "/v1/messages",
                {"model": HAIKU, "max_tokens": 50, "messages": MESSAGES, **stream},
            ),
        }


TAPS: dict[str, Callable[[], StreamTap]] = {
    "chat": lambda: ChatTap(False),
    "chat_usage": lambda: ChatTap(False),
    "responses": ResponsesTap,
    "messages": MessagesTap,
}


def feed(tap: StreamTap, data: bytes, cuts: list[int]) -> tuple[bytes, bytes]:
    """(what passed while streaming, what was held to the end) for ``data`` cut at ``cuts``."""
    points = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    passed = b"".join(tap.feed(data[a:b]) for a, b in zip(points, points[1:], strict=False))
    return passed, tap.finish()


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(TAPS)), cuts=st.lists(st.integers(min_value=0), max_size=12))
def test_any_chunking_passes_every_byte_and_holds_only_the_end(
    recorded: Recorded, name: str, cuts: list[int]
) -> None:
    data = recorded[name]
    tap = TAPS[name]()
    passed, held = feed(tap, data, cuts)
    assert passed + held == data
    assert held.startswith(TERMINAL[name]) and TERMINAL[name] not in passed
    if name != "chat":  # without the option, chat streams report no usage
        assert tap.usage is not None and tap.usage.output_tokens > 0


def test_usage_read_from_each_stream(recorded: Recorded) -> None:
    whole = orjson.loads(recorded["chat_whole"])
    expected = TokenUsage.from_openai_chat(whole["usage"])
    chat = ChatTap(False)
    feed(chat, recorded["chat_usage"], [])
    assert chat.usage == expected and expected.reasoning_tokens == 3
    bare = ChatTap(False)
    feed(bare, recorded["chat"], [])
    assert bare.usage is None
    assert bare.estimated_usage(40) == TokenUsage(input_tokens=40, output_tokens=9)  # 12 - 3
    messages = MessagesTap()
    feed(messages, recorded["messages"], [7, 300])
    assert messages.usage == TokenUsage(input_tokens=11, output_tokens=12)


def test_hidden_usage_matches_a_stream_that_never_asked(recorded: Recorded) -> None:
    tap = ChatTap(True)
    passed, held = feed(tap, recorded["chat_usage"], [100, 101, 900])
    assert anonymous(passed + held) == anonymous(recorded["chat"])
    assert tap.usage is not None and tap.usage.output_tokens == 12


def test_crlf_streams_are_split_too(recorded: Recorded) -> None:
    data = recorded["messages"].replace(b"\n", b"\r\n")
    tap = MessagesTap()
    passed, held = feed(tap, data, [5, 50, 51])
    assert passed + held == data and held.startswith(b"event: message_stop\r\n")
    assert tap.usage == TokenUsage(input_tokens=11, output_tokens=12)


def test_error_events_are_terminal() -> None:
    chat = ChatTap(False)
    error = b'data: {"error":{"message":"boom","type":"server_error"}}\n\n'
    assert chat.feed(b'data: {"choices":[{"delta":{"content":"abcd"}}]}\n\n' + error) != b""
    assert chat.finish() == error and chat.output_chars == 4
    responses = ResponsesTap()
    assert responses.feed(b'event: error\ndata: {"type":"error"}\n\n') == b""
    messages = MessagesTap()
    assert messages.feed(b'event: error\ndata: {"type":"error"}\n\n') == b""


def test_json_usage_finds_the_top_level_report() -> None:
    usage = {"prompt_tokens": 5, "completion_tokens": 2}
    tricky = {
        "choices": [{"message": {"content": 'say "usage": {"prompt_tokens": 99}'}}],
        "tool": {"usage": {"note": "not a report"}},
        "usage": usage,
    }
    assert json_usage(orjson.dumps(tricky)) == usage
    spaced = b'{"usage" :\n {"input_tokens": 3, "output_tokens": 4}, "id": "x"}'
    assert json_usage(spaced) == {"input_tokens": 3, "output_tokens": 4}
    nested_last = b'{"usage": {"input_tokens": 1}, "meta": {"usage": {"other": 1}}}'
    assert json_usage(nested_last) == {"input_tokens": 1}  # full parse when the last is odd
    assert json_usage(b'{"id": "x"}') is None
    assert json_usage(b'{"usage": null}') is None
    assert json_usage(b"not json usage") is None


def test_prompt_estimate_counts_media_at_a_flat_rate() -> None:
    image = "data:image/png;base64," + "A" * 400_000
    body: Any = {
        "model": "gpt-4o",
        "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": image}}]}
        ],
    }
    raw = orjson.dumps(body)
    estimate = prompt_tokens(body, raw)
    assert IMAGE_TOKENS < estimate < IMAGE_TOKENS + 200
    anthropic_image: Any = {"type": "base64", "media_type": "image/jpeg", "data": "B" * 40_000}
    body = {
        "messages": [{"role": "user", "content": [{"type": "image", "source": anthropic_image}]}]
    }
    assert IMAGE_TOKENS < prompt_tokens(body, orjson.dumps(body)) < IMAGE_TOKENS + 200
    text: Any = {"messages": [{"role": "user", "content": "x" * 4000}]}
    assert 1000 < prompt_tokens(text, orjson.dumps(text)) < 1020


def test_max_output_tokens_takes_the_first_positive_integer() -> None:
    fields = ("max_completion_tokens", "max_tokens")
    assert max_output_tokens({"max_tokens": 10}, fields) == 10
    assert max_output_tokens({"max_completion_tokens": 5, "max_tokens": 10}, fields) == 5
    assert max_output_tokens({"max_completion_tokens": True, "max_tokens": 0}, fields) is None
    assert max_output_tokens({}, fields) is None


def test_chat_content_chunks_pass_unparsed_and_are_counted_only_when_needed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(usage_tap, "UNCOUNTED_BYTES", 200)
    tap = ChatTap(True)
    quoted = orjson.dumps({"choices": [{"delta": {"content": 'say "usage": 1'}}], "usage": None})
    chunks = [b"data: " + quoted + b"\n\n"] * 10
    passed = b"".join(tap.feed(c) for c in chunks)
    assert b'"usage"' not in passed.replace(b'\\"usage\\"', b"")  # the null usage is hidden
    assert passed.count(b"say") == 10
    assert len(tap._uncounted) < 10  # counted as it went, past the byte limit
    assert tap.output_chars == 10 * len('say "usage": 1') and tap.usage is None
    report = b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":7}}\n\n'
    assert tap.feed(report) == b""  # the report the client did not ask for is dropped
    assert tap.usage == TokenUsage(input_tokens=3, output_tokens=7)
