"""``POST /v1/responses``: the Responses API, as JSON or as its named SSE event sequence.

Streamed: ``response.created``, ``response.in_progress``, (a reasoning item's
``response.output_item.added``/``.done`` for reasoning models), ``response.output_item.added``,
``response.content_part.added``, ``response.output_text.delta``..., ``response.output_text.done``,
``response.content_part.done``, ``response.output_item.done`` and ``response.completed`` (or
``response.incomplete`` when ``max_output_tokens`` cut the answer short). A tool call is a
``function_call`` item streaming ``response.function_call_arguments.delta``/``.done``, or for
a free-form ``custom`` tool a ``custom_tool_call`` item streaming
``response.custom_tool_call_input.delta``/``.done``, in place of the content part and text
events. Tools are read from ``tools`` and from ``additional_tools`` input items, namespaces
flattened (a call of a namespaced tool names its ``namespace``).
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
from tokenwage.mock_upstream.openai_params import (
    ADDITIONAL_TOOLS,
    is_reasoning_model,
    output_limit,
    require_model,
    responses_tools,
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
from tokenwage.mock_upstream.tool_calls import ToolCall, plan_tool_call

MIN_OUTPUT_TOKENS = 16
_SYSTEM_ROLES = frozenset({"system", "developer"})
_STREAM_ERROR_MESSAGE = "The server had an error while processing your request. Sorry about that!"


def input_items(body: dict[str, Any]) -> list[Any]:
    """``input`` as a list of items (a string is one user message)."""
    items = body.get("input")
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    return items if isinstance(items, list) else []


def responses_prompt(body: dict[str, Any]) -> Prompt:
    items = input_items(body)
    instructions = body.get("instructions")
    system = [instructions] if isinstance(instructions, str) else []
    tools = _count_tools(body.get("tools"))
    turns = 0
    for item in items:
        if not isinstance(item, dict):
            turns += 1
        elif item.get("type") == ADDITIONAL_TOOLS:
            tools += _count_tools(item.get("tools"))
        else:
            turns += 1
            if item.get("role") in _SYSTEM_ROLES:
                system.append(text_of(item.get("content")))
    request, user_spoke_last = user_request(items, _turn_kind)
    return Prompt(
        chars=count_chars(items) + count_chars(instructions) + count_chars(body.get("tools")),
        messages=turns + (1 if instructions else 0),
        tools=tools,
        system_text="\n".join(system),
        last_user_text=text_of(request.get("content")) if request is not None else "",
        user_spoke_last=user_spoke_last,
    )


def _count_tools(tools: Any) -> int:
    """Every tool counts, those inside a ``namespace`` one by one."""
    if not isinstance(tools, list):
        return 0
    return sum(
        _count_tools(tool.get("tools"))
        if isinstance(tool, dict) and tool.get("type") == "namespace"
        else 1
        for tool in tools
    )


def _turn_kind(item: Any) -> str:
    """User messages, system text (developer messages, tool lists) and the rest (outputs...)."""
    if not isinstance(item, dict):
        return OTHER
    if item.get("type") == ADDITIONAL_TOOLS or item.get("role") in _SYSTEM_ROLES:
        return SYSTEM
    return USER if item.get("role") == "user" else OTHER


def usage_json(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cache_read_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


class _Plan:
    """The response to give: its items, usage and the shell the events wrap around."""

    def __init__(self, exchange: Exchange, body: dict[str, Any], model: str) -> None:
        if body.get("input") is not None and not isinstance(body["input"], str | list):
            raise ApiError(
                400, "Invalid type for 'input': expected a string or an array.", param="input"
            )
        limit = output_limit(body, ("max_output_tokens",), MIN_OUTPUT_TOKENS)
        prompt = responses_prompt(body)
        call = None
        if prompt.wants_tool():
            tools = responses_tools(body.get("tools"), input_items(body))
            call = plan_tool_call(tools, prompt.last_user_text)
        self.hex = exchange.id_hex
        self.reasoning = is_reasoning_model(model)
        self.call = call
        self.usage = plan_usage(
            prompt,
            max_output_tokens=limit,
            reasoning=self.reasoning,
            wanted_output_tokens=call.tokens if call else None,
        )
        self.incomplete = self.usage.truncated and call is None
        self.shell: dict[str, Any] = {
            "id": "resp_" + self.hex,
            "object": "response",
            "created_at": exchange.created_s,
            "status": "in_progress",
            "background": False,
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "max_output_tokens": limit,
            "max_tool_calls": None,
            "model": model,
            "output": [],
            "parallel_tool_calls": True,
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": "medium" if self.reasoning else None, "summary": None},
            "service_tier": "default",
            "store": body.get("store", True),
            "temperature": 1.0,
            "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": None,
            "user": None,
            "metadata": body.get("metadata") or {},
        }

    @property
    def text(self) -> str:
        return answer_text(self.usage.visible_output_tokens, self.usage.answer_salt)

    def reasoning_item(self) -> dict[str, Any]:
        return {"id": "rs_" + self.hex, "type": "reasoning", "summary": []}

    def answer_item(self, done: bool) -> dict[str, Any]:
        status = ("incomplete" if self.incomplete else "completed") if done else "in_progress"
        if self.call is not None:
            return self._call_item(self.call, done, status)
        return {
            "id": "msg_" + self.hex,
            "type": "message",
            "status": status,
            "role": "assistant",
            "content": [_text_part(self.text)] if done else [],
        }

    def _call_item(self, call: ToolCall, done: bool, status: str) -> dict[str, Any]:
        item: dict[str, Any]
        if call.tool.custom:
            item = {
                "id": "ctc_" + self.hex,
                "type": "custom_tool_call",
                "status": status,
                "call_id": "call_" + self.hex,
                "name": call.name,
                "input": call.arguments if done else "",
            }
        else:
            item = {
                "id": "fc_" + self.hex,
                "type": "function_call",
                "status": status,
                "arguments": call.arguments if done else "",
                "call_id": "call_" + self.hex,
                "name": call.name,
            }
        if call.tool.namespace is not None:
            item["namespace"] = call.tool.namespace
        return item

    def final(self, with_usage: bool) -> dict[str, Any]:
        output = [self.reasoning_item()] if self.reasoning else []
        output.append(self.answer_item(done=True))
        response = {**self.shell, "status": "completed", "output": output}
        if self.incomplete:
            response["status"] = "incomplete"
            response["incomplete_details"] = {"reason": "max_output_tokens"}
        if with_usage:
            response["usage"] = usage_json(self.usage)
        return response


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


async def responses(exchange: Exchange, send: Send) -> None:
    body = OPENAI.parse(exchange)
    model = require_model(body)
    plan = _Plan(exchange, body, model)
    if body.get("stream") is True:
        await _stream(exchange, send, plan)
        return
    data = orjson.dumps(plan.final(with_usage=not exchange.faults.no_usage))
    headers = OPENAI.headers(exchange)
    if exchange.faults.drop_mid_stream:
        await send_json_cut(send, 200, data, headers)
    else:
        await send_json(send, 200, data, headers)


class _Events:
    """Named events numbered by ``sequence_number`` from 0, as the Responses API does."""

    __slots__ = ("stream", "sequence")

    def __init__(self, stream: EventStream) -> None:
        self.stream = stream
        self.sequence = 0

    async def emit(self, name: str, **fields: Any) -> None:
        await self.stream.named(name, {"type": name, "sequence_number": self.sequence, **fields})
        self.sequence += 1

    def error_event(self) -> bytes:
        error = {
            "type": "error",
            "code": "server_error",
            "message": _STREAM_ERROR_MESSAGE,
            "param": None,
            "sequence_number": self.sequence,
        }
        return b"event: error\ndata: " + orjson.dumps(error) + b"\n\n"


async def _stream(exchange: Exchange, send: Send, plan: _Plan) -> None:
    stream = EventStream(send, OPENAI.headers(exchange), exchange.config.chunk_delay_ms)
    events = _Events(stream)
    emit = events.emit
    await stream.open()
    await emit("response.created", response=plan.shell)
    await emit("response.in_progress", response=plan.shell)
    index = 0
    if plan.reasoning:
        await emit("response.output_item.added", output_index=0, item=plan.reasoning_item())
        await emit("response.output_item.done", output_index=0, item=plan.reasoning_item())
        index = 1
    item = plan.answer_item(done=False)
    await emit("response.output_item.added", output_index=index, item=item)
    where = {"item_id": item["id"], "output_index": index}
    if plan.call is not None:
        completed = await _stream_arguments(exchange, events, plan.call, where)
    else:
        completed = await _stream_text(exchange, events, plan, where)
    if not completed:
        return
    await emit("response.output_item.done", output_index=index, item=plan.answer_item(done=True))
    final = plan.final(with_usage=not exchange.faults.no_usage)
    await emit("response.incomplete" if plan.incomplete else "response.completed", response=final)
    await stream.close()


async def _stream_text(
    exchange: Exchange, events: _Events, plan: _Plan, where: dict[str, Any]
) -> bool:
    usage = plan.usage
    pieces = answer_chunks(
        usage.visible_output_tokens, usage.answer_salt, exchange.config.stream_chunks
    )
    faults = exchange.faults
    cut = drop_point(len(pieces), faults.drop_mid_stream or faults.error_mid_stream)
    await events.emit("response.content_part.added", **where, content_index=0, part=_text_part(""))
    for number, piece in enumerate(pieces):
        if number:
            await events.stream.pause()
        await events.emit(
            "response.output_text.delta", **where, content_index=0, delta=piece, logprobs=[]
        )
        if number == cut:
            await fail_mid_stream(events.stream, faults.drop_mid_stream, events.error_event())
            return False
    text = plan.text
    await events.emit("response.output_text.done", **where, content_index=0, text=text, logprobs=[])
    await events.emit("response.content_part.done", **where, content_index=0, part=_text_part(text))
    return True


async def _stream_arguments(
    exchange: Exchange, events: _Events, call: ToolCall, where: dict[str, Any]
) -> bool:
    """``function_call_arguments`` or, for a custom tool, ``custom_tool_call_input`` events."""
    kind = (
        "response.custom_tool_call_input"
        if call.tool.custom
        else ("response.function_call_arguments")
    )
    parts = split_evenly(call.arguments, exchange.config.stream_chunks)
    faults = exchange.faults
    cut = drop_point(len(parts), faults.drop_mid_stream or faults.error_mid_stream)
    for number, delta in enumerate(parts):
        if number:
            await events.stream.pause()
        await events.emit(kind + ".delta", **where, delta=delta)
        if number == cut:
            await fail_mid_stream(events.stream, faults.drop_mid_stream, events.error_event())
            return False
    if call.tool.custom:
        await events.emit(kind + ".done", **where, input=call.arguments)
    else:
        await events.emit(kind + ".done", **where, arguments=call.arguments)
    return True
