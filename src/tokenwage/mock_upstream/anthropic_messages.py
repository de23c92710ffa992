"""``POST /v1/messages`` and ``POST /v1/messages/count_tokens`` in Anthropic's shapes.

Streamed: ``message_start`` (usage with input and cache tokens, ``output_tokens: 1``),
``content_block_start``, ``ping``, ``content_block_delta``..., ``content_block_stop``,
``message_delta`` (stop reason and final usage) and ``message_stop``.
"""

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
from tokenwage.mock_upstream.providers import ANTHROPIC, ApiError, check_model_exists
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
from tokenwage.mock_upstream.tool_calls import ToolSpec, plan_tool_call

_ROLES = frozenset({"user", "assistant", "system"})
_STREAM_ERROR = (
    b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error",'
    b'"message":"Overloaded"}}\n\n'
)


def _field_required(name: str) -> ApiError:
    return ApiError(400, f"{name}: Field required")


def messages_prompt(body: dict[str, Any]) -> tuple[str, Prompt]:
    """(model, prompt) of a Messages request, refusing what Anthropic would refuse."""
    model = body.get("model")
    if model is None:
        raise _field_required("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "model: Input should be a valid string")
    check_model_exists(model, anthropic=True)
    messages = body.get("messages")
    if messages is None:
        raise _field_required("messages")
    if not isinstance(messages, list):
        raise ApiError(400, "messages: Input should be a valid list")
    if not messages:
        raise ApiError(400, "messages: at least one message is required")
    system = body.get("system")
    system_parts = [text_of(system), *_system_turns(messages)]
    raw_tools = body.get("tools")
    tools: list[Any] = raw_tools if isinstance(raw_tools, list) else []
    request, user_spoke_last = user_request(messages, _turn_kind)
    return model, Prompt(
        chars=count_chars(messages) + count_chars(system) + count_chars(tools),
        messages=len(messages) + (1 if system else 0),
        tools=len(tools),
        system_text="\n".join(system_parts),
        last_user_text=text_of(request.get("content")) if request is not None else "",
        user_spoke_last=user_spoke_last,
    )


def _system_turns(messages: list[Any]) -> list[str]:
    """Check the roles; the texts of ``role: system`` turns (extra system text, not messages)."""
    texts = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            raise ApiError(
                400, f"messages.{index}.role: Input should be 'user', 'assistant' or 'system'"
            )
        if message["role"] == "system":
            texts.append(text_of(message.get("content")))
    return texts


def _turn_kind(message: dict[str, Any]) -> str:
    """``role: system`` turns (Claude Code sends them mid-conversation) count as system text."""
    role = message["role"]
    if role == "system":
        return SYSTEM
    if role == "user" and not _carries_tool_results(message.get("content")):
        return USER
    return OTHER


def _carries_tool_results(content: Any) -> bool:
    return isinstance(content, list) and any(
        isinstance(block, dict) and block.get("type") == "tool_result" for block in content
    )


def _max_tokens(body: dict[str, Any]) -> int:
    value = body.get("max_tokens")
    if value is None:
        raise _field_required("max_tokens")
    if not isinstance(value, int) or isinstance(value, bool):
        raise ApiError(400, "max_tokens: Input should be a valid integer")
    if value < 1:
        raise ApiError(400, "max_tokens: Input should be greater than or equal to 1")
    return value


def usage_json(usage: Usage, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": usage.uncached_input_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": usage.cache_write_tokens,
            "ephemeral_1h_input_tokens": 0,
        },
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def _tool_specs(tools: Any) -> list[ToolSpec]:
    if not isinstance(tools, list):
        return []
    return [
        ToolSpec(tool["name"], tool.get("input_schema"))
        for tool in tools
        if isinstance(tool, dict) and isinstance(tool.get("name"), str) and tool["name"]
    ]


class _Answer:
    __slots__ = ("usage", "tool_name", "tool_input", "tool_id", "stop_reason")

    def __init__(self, exchange: Exchange, body: dict[str, Any], prompt: Prompt) -> None:
        limit = _max_tokens(body)
        call = None
        if prompt.wants_tool():
            call = plan_tool_call(_tool_specs(body.get("tools")), prompt.last_user_text)
        self.tool_name = ""
        self.tool_input: dict[str, Any] = {}
        self.tool_id = "toolu_" + exchange.id_hex
        wanted = None
        if call is not None:
            self.tool_name = call.name
            self.tool_input = orjson.loads(call.arguments)
            wanted = call.tokens
        self.usage = plan_usage(prompt, max_output_tokens=limit, wanted_output_tokens=wanted)
        if self.tool_name:
            self.stop_reason = "tool_use"
        else:
            self.stop_reason = "max_tokens" if self.usage.truncated else "end_turn"

    def block(self) -> dict[str, Any]:
        if self.tool_name:
            return {
                "type": "tool_use",
                "id": self.tool_id,
                "name": self.tool_name,
                "input": self.tool_input,
            }
        text = answer_text(self.usage.output_tokens, self.usage.answer_salt)
        return {"type": "text", "text": text}


def _message(exchange: Exchange, model: str, content: list[Any]) -> dict[str, Any]:
    return {
        "id": "msg_" + exchange.id_hex,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": None,
        "stop_sequence": None,
    }


async def messages(exchange: Exchange, send: Send) -> None:
    body = ANTHROPIC.parse(exchange)
    model, prompt = messages_prompt(body)
    answer = _Answer(exchange, body, prompt)
    if body.get("stream") is True:
        await _stream(exchange, send, model, answer)
        return
    payload = _message(exchange, model, [answer.block()])
    payload["stop_reason"] = answer.stop_reason
    if not exchange.faults.no_usage:
        payload["usage"] = usage_json(answer.usage, answer.usage.output_tokens)
    data = orjson.dumps(payload)
    headers = ANTHROPIC.headers(exchange)
    if exchange.faults.drop_mid_stream:
        await send_json_cut(send, 200, data, headers)
    else:
        await send_json(send, 200, data, headers)


async def count_tokens(exchange: Exchange, send: Send) -> None:
    body = ANTHROPIC.parse(exchange)
    _, prompt = messages_prompt(body)
    data = orjson.dumps({"input_tokens": prompt.tokens})
    await send_json(send, 200, data, ANTHROPIC.headers(exchange))


def _deltas(answer: _Answer, pieces: int) -> list[dict[str, Any]]:
    if answer.tool_name:
        arguments = orjson.dumps(answer.tool_input).decode()
        return [
            {"type": "input_json_delta", "partial_json": part}
            for part in split_evenly(arguments, pieces)
        ]
    usage = answer.usage
    return [
        {"type": "text_delta", "text": piece}
        for piece in answer_chunks(usage.output_tokens, usage.answer_salt, pieces)
    ]


async def _stream(exchange: Exchange, send: Send, model: str, answer: _Answer) -> None:
    faults = exchange.faults
    stream = EventStream(send, ANTHROPIC.headers(exchange), exchange.config.chunk_delay_ms)
    await stream.open()
    start = _message(exchange, model, [])
    if not faults.no_usage:
        start["usage"] = usage_json(answer.usage, 1)
    await stream.named("message_start", {"type": "message_start", "message": start})
    block = answer.block()
    if answer.tool_name:
        block = {**block, "input": {}}
    else:
        block = {"type": "text", "text": ""}
    await stream.named(
        "content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}
    )
    await stream.named("ping", {"type": "ping"})
    deltas = _deltas(answer, exchange.config.stream_chunks)
    cut = drop_point(len(deltas), faults.drop_mid_stream or faults.error_mid_stream)
    for index, delta in enumerate(deltas):
        if index:
            await stream.pause()
        event = {"type": "content_block_delta", "index": 0, "delta": delta}
        await stream.named("content_block_delta", event)
        if index == cut:
            await fail_mid_stream(stream, faults.drop_mid_stream, _STREAM_ERROR)
            return
    await stream.named("content_block_stop", {"type": "content_block_stop", "index": 0})
    final: dict[str, Any] = {
        "type": "message_delta",
        "delta": {"stop_reason": answer.stop_reason, "stop_sequence": None},
    }
    if not faults.no_usage:
        usage = usage_json(answer.usage, answer.usage.output_tokens)
        del usage["cache_creation"], usage["service_tier"]
        final["usage"] = usage
    await stream.named("message_delta", final)
    await stream.named("message_stop", {"type": "message_stop"})
    await stream.close()
