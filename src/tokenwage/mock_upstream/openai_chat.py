"""``POST /v1/chat/completions``: JSON or ``data:`` SSE chunks ending in ``data: [DONE]``."""

from __future__ import annotations

from typing import Any

import orjson

from tokenwage.mock_upstream.asgi import (
    EventStream,
    Send,
    drop_point,
    fail_mid_stream,
    send_json,
    send_json_cut,
)
from tokenwage.mock_upstream.exchange import Exchange
from tokenwage.mock_upstream.openai_params import (
    chat_tools,
    is_reasoning_model,
    missing,
    output_limit,
    require_model,
    stream_flags,
)
from tokenwage.mock_upstream.providers import OPENAI, ApiError
from tokenwage.mock_upstream.tokens import (
    OTHER,
    SYSTEM,
    USER,
    Prompt,
    Usage,
    answer_chunks,
    answer_text,
    count_chars,
    plan_usage,
    split_evenly,
    text_of,
    user_request,
)
from tokenwage.mock_upstream.tool_calls import plan_tool_call

_SYSTEM_ROLES = frozenset({"system", "developer"})
_STREAM_ERROR_MESSAGE = "The server had an error while processing your request. Sorry about that!"
_STREAM_ERROR = (
    b"data: "
    + orjson.dumps(
        {
            "error": {
                "message": _STREAM_ERROR_MESSAGE,
                "type": "server_error",
                "param": None,
                "code": None,
            }
        }
    )
    + b"\n\n"
)


def chat_prompt(messages: list[Any], tools: Any) -> Prompt:
    system: list[str] = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ApiError(
                400,
                f"Invalid type for 'messages[{index}]': expected an object.",
                param=f"messages[{index}]",
                code="invalid_type",
            )
        role = message.get("role")
        if not isinstance(role, str):
            raise missing(f"messages[{index}].role")
        if role in _SYSTEM_ROLES:
            system.append(text_of(message.get("content")))
    request, user_spoke_last = user_request(messages, _turn_kind)
    tool_list = tools if isinstance(tools, list) else []
    return Prompt(
        chars=count_chars(messages) + count_chars(tool_list),
        messages=len(messages),
        tools=len(tool_list),
        system_text="\n".join(system),
        last_user_text=text_of(request.get("content")) if request is not None else "",
        user_spoke_last=user_spoke_last,
    )


def _turn_kind(message: dict[str, Any]) -> str:
    role = message["role"]
    if role in _SYSTEM_ROLES:
        return SYSTEM
    return USER if role == "user" else OTHER


def usage_json(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {
            "cached_tokens": usage.cache_read_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
            "audio_tokens": 0,
        },
        "completion_tokens_details": {
            "reasoning_tokens": usage.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


class _Answer:
    """The planned answer: either text or one function call."""

    __slots__ = ("usage", "text", "tool_name", "arguments", "call_id")

    def __init__(self, exchange: Exchange, body: dict[str, Any], model: str) -> None:
        messages = body.get("messages")
        if messages is None:
            raise missing("messages")
        if not isinstance(messages, list):
            raise ApiError(400, "Invalid type for 'messages': expected an array.", param="messages")
        if not messages:
            raise ApiError(
                400,
                "Invalid 'messages': empty array. Expected an array with minimum length 1, "
                "but got an empty array instead.",
                param="messages",
                code="empty_array",
            )
        prompt = chat_prompt(messages, body.get("tools"))
        limit = output_limit(body, ("max_completion_tokens", "max_tokens"), 1)
        reasoning = is_reasoning_model(model)
        call = None
        if prompt.wants_tool():
            call = plan_tool_call(chat_tools(body.get("tools")), prompt.last_user_text)
        self.tool_name = call.name if call else ""
        self.arguments = call.arguments if call else ""
        self.call_id = "call_" + exchange.id_hex
        self.usage = plan_usage(
            prompt,
            max_output_tokens=limit,
            reasoning=reasoning,
            wanted_output_tokens=call.tokens if call else None,
        )
        self.text = (
            "" if call else answer_text(self.usage.visible_output_tokens, self.usage.answer_salt)
        )

    @property
    def finish_reason(self) -> str:
        if self.tool_name:
            return "tool_calls"
        return "length" if self.usage.truncated else "stop"

    def message(self) -> dict[str, Any]:
        if self.tool_name:
            call = {
                "id": self.call_id,
                "type": "function",
                "function": {"name": self.tool_name, "arguments": self.arguments},
            }
            return {
                "role": "assistant",
                "content": None,
                "tool_calls": [call],
                "refusal": None,
                "annotations": [],
            }
        return {"role": "assistant", "content": self.text, "refusal": None, "annotations": []}


async def chat_completions(exchange: Exchange, send: Send) -> None:
    body = OPENAI.parse(exchange)
    model = require_model(body)
    stream, include_usage = stream_flags(body)
    answer = _Answer(exchange, body, model)
    if stream:
        await _stream(exchange, send, model, answer, include_usage)
        return
    payload: dict[str, Any] = {
        "id": "chatcmpl-" + exchange.id_hex,
        "object": "chat.completion",
        "created": exchange.created_s,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": answer.message(),
                "logprobs": None,
                "finish_reason": answer.finish_reason,
            }
        ],
        "service_tier": "default",
        "system_fingerprint": "fp_mock",
    }
    if not exchange.faults.no_usage:
        payload["usage"] = usage_json(answer.usage)
    data = orjson.dumps(payload)
    headers = OPENAI.headers(exchange)
    if exchange.faults.drop_mid_stream:
        await send_json_cut(send, 200, data, headers)
    else:
        await send_json(send, 200, data, headers)


def _deltas(answer: _Answer, pieces: int) -> list[dict[str, Any]]:
    if not answer.tool_name:
        return [
            {"content": piece}
            for piece in answer_chunks(
                answer.usage.visible_output_tokens, answer.usage.answer_salt, pieces
            )
        ]
    return [
        {"tool_calls": [{"index": 0, "function": {"arguments": part}}]}
        for part in split_evenly(answer.arguments, pieces)
    ]


async def _stream(
    exchange: Exchange, send: Send, model: str, answer: _Answer, include_usage: bool
) -> None:
    config = exchange.config
    base: dict[str, Any] = {
        "id": "chatcmpl-" + exchange.id_hex,
        "object": "chat.completion.chunk",
        "created": exchange.created_s,
        "model": model,
        "service_tier": "default",
        "system_fingerprint": "fp_mock",
    }
    with_usage = include_usage and not exchange.faults.no_usage
    if with_usage:
        base["usage"] = None

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {**base, "choices": [choice]}

    first: dict[str, Any] = {"role": "assistant", "content": "", "refusal": None}
    if answer.tool_name:
        first["content"] = None
        first["tool_calls"] = [
            {
                "index": 0,
                "id": answer.call_id,
                "type": "function",
                "function": {"name": answer.tool_name, "arguments": ""},
            }
        ]
    stream = EventStream(send, OPENAI.headers(exchange), config.chunk_delay_ms)
    await stream.open()
    await stream.data(chunk(first))
    deltas = _deltas(answer, config.stream_chunks)
    cut = drop_point(
        len(deltas), exchange.faults.drop_mid_stream or exchange.faults.error_mid_stream
    )
    for index, delta in enumerate(deltas):
        if index:
            await stream.pause()
        await stream.data(chunk(delta))
        if index == cut:
            await fail_mid_stream(stream, exchange.faults.drop_mid_stream, _STREAM_ERROR)
            return
    await stream.data(chunk({}, answer.finish_reason))
    if with_usage:
        await stream.data({**base, "choices": [], "usage": usage_json(answer.usage)})
    await stream.raw(b"data: [DONE]\n\n")
    await stream.close()
