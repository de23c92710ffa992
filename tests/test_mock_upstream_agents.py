"""The simulated provider against what the real coding agents send (Claude Code and Codex CLI).

The request shapes come from captures of Claude Code 2.1.197 and Codex CLI 0.169.0: Claude
Code puts a ``role: "system"`` turn after the prompt and probes ``HEAD /``; Codex's newer models
put their tools in an ``additional_tools`` input item, grouped in namespaces, with a free-form
(``custom``) ``exec`` tool.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from tokenwage.mock_upstream import MockConfig
from tokenwage.mock_upstream.testing import start_mock_upstream
from tokenwage.mock_upstream.tokens import count_chars
from tokenwage.mock_upstream.tool_calls import ToolSpec, plan_tool_call, tool_arguments

OPUS = "claude-opus-4-8"
CODEX_MODEL = "gpt-6.1-sol"
BASH_SCHEMA: Any = {
    "type": "object",
    "properties": {
        "command": {"type": "string"},
        "timeout": {"type": "number", "description": "ms"},
        "run_in_background": {"type": "boolean"},
    },
    "required": ["command"],
    "additionalProperties": False,
}
CLAUDE_TOOLS: Any = [
    {"name": "Agent", "input_schema": {"type": "object", "properties": {}}},
    {"name": "Bash", "description": "Run a command", "input_schema": BASH_SCHEMA},
]
REMINDER = {"type": "text", "text": "<system-reminder>Today is a day.</system-reminder>"}
AGENT_TYPES = "Available agent types: claude, Explore. [mock:cache:7]"
WAIT_SCHEMA: Any = {
    "type": "object",
    "properties": {"cell_id": {"type": "string"}, "max_tokens": {"type": "number"}},
    "required": ["cell_id"],
}
CODEX_TOOLS: Any = {
    "type": "additional_tools",
    "id": "at_1",
    "role": "developer",
    "tools": [
        {
            "type": "namespace",
            "name": "functions",
            "description": "",
            "tools": [
                {
                    "type": "custom",
                    "name": "exec",
                    "description": "Run JavaScript",
                    "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"},
                },
                {"type": "function", "name": "wait", "strict": False, "parameters": WAIT_SCHEMA},
            ],
        },
        {
            "type": "namespace",
            "name": "clock",
            "description": "Time.",
            "tools": [
                {
                    "type": "function",
                    "name": "sleep",
                    "parameters": {
                        "type": "object",
                        "properties": {"duration_ms": {"type": "number", "minimum": 1}},
                        "required": ["duration_ms"],
                    },
                }
            ],
        },
    ],
}
# Codex's real developer prompt talks about caches: that must not read from the prompt cache.
CODEX_DEVELOPER = "You are Codex. Results are cached; the cache is cleared on restart."
CODEX_EXTRAS: Any = {
    "prompt_cache_key": "01a209b4",
    "extra_body": {"client_metadata": {"session_id": "01a209b4"}},
    "include": ["reasoning.encrypted_content"],
    "reasoning": {"effort": "low", "context": "all_turns"},
    "store": False,
    "text": {"verbosity": "low"},
    "tool_choice": "auto",
    "parallel_tool_calls": False,
}


def codex_input(prompt: str) -> list[Any]:
    return [
        CODEX_TOOLS,
        {"type": "message", "role": "developer", "content": [_text(CODEX_DEVELOPER)]},
        {"type": "message", "role": "user", "content": [_text("<environment_context/>")]},
        {"type": "message", "role": "user", "content": [_text(prompt)]},
    ]


def _text(text: str) -> dict[str, str]:
    return {"type": "input_text", "text": text}


def claude_messages(prompt: str) -> list[Any]:
    return [
        {"role": "user", "content": [REMINDER, {"type": "text", "text": prompt}]},
        {"role": "system", "content": AGENT_TYPES},
    ]


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with start_mock_upstream(MockConfig(seed=5)) as url:
        yield url


@pytest.fixture
def oai(base_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{base_url}/v1", api_key="sk-test", max_retries=0) as client:
        yield client


@pytest.fixture
def claude(base_url: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=base_url, api_key="sk-ant-test", max_retries=0) as client:
        yield client


# --- Claude Code ---------------------------------------------------------------------------


def test_a_system_turn_in_messages_is_extra_system_text(claude: anthropic.Anthropic) -> None:
    messages = claude_messages("reply with the word ok tokens:9")
    system: Any = [{"type": "text", "text": "You are a Claude agent."}]
    # Claude Code's default models send all of these, on /v1/messages?beta=true.
    with claude.beta.messages.stream(
        model=OPUS,
        max_tokens=64000,
        system=system,
        messages=messages,
        tools=CLAUDE_TOOLS,
        metadata={"user_id": '{"device_id":"4d41"}'},
        thinking={"type": "adaptive"},
        context_management={"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        output_config={"effort": "high"},
        betas=["claude-code-20250219", "mid-conversation-system-2026-04-07"],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert final.stop_reason == "end_turn" and len(text.split()) == 9
    usage = final.usage
    assert usage.output_tokens == 9 and usage.cache_read_input_tokens == 7
    counted = claude.messages.count_tokens(
        model=OPUS, system=system, messages=messages, tools=CLAUDE_TOOLS
    )
    assert counted.input_tokens == usage.input_tokens + 7


def test_role_system_counts_like_a_system_prompt(claude: anthropic.Anthropic) -> None:
    as_turn = claude.messages.count_tokens(
        model=OPUS, messages=[{"role": "user", "content": "hi"}, _system("Be brief.")]
    )
    as_prompt = claude.messages.count_tokens(
        model=OPUS, system="Be brief.", messages=[{"role": "user", "content": "hi"}]
    )
    assert as_turn.input_tokens == as_prompt.input_tokens
    bad: Any = [{"role": "tool", "content": "x"}]
    with pytest.raises(anthropic.BadRequestError, match="'user', 'assistant' or 'system'"):
        claude.messages.create(model=OPUS, max_tokens=5, messages=bad)


def _system(text: str) -> Any:
    return {"role": "system", "content": text}


def test_use_tool_bash_through_a_system_turn(claude: anthropic.Anthropic) -> None:
    ask = "use tool Bash `echo hi` tokens:11"
    first = claude.messages.create(
        model=OPUS, max_tokens=1000, tools=CLAUDE_TOOLS, messages=claude_messages(ask)
    )
    block = first.content[0]
    assert first.stop_reason == "tool_use" and block.type == "tool_use"
    assert (block.name, block.input) == ("Bash", {"command": "echo hi"})
    # Claude Code answers with a tool_result turn (text blocks beside it are its reminders):
    # that turn gets text, and the user's ``tokens:N`` still holds for it.
    history: Any = [
        *claude_messages(ask),
        {"role": "assistant", "content": [block.model_dump()]},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": block.id, "content": "hi"},
                REMINDER,
            ],
        },
        _system("A late system note."),
    ]
    second = claude.messages.create(
        model=OPUS, max_tokens=1000, tools=CLAUDE_TOOLS, messages=history
    )
    assert second.stop_reason == "end_turn" and second.content[0].type == "text"
    assert second.usage.output_tokens == 11


def test_root_probes_answer_at_once_without_auth() -> None:
    with start_mock_upstream(MockConfig(error_rate=1.0)) as url:
        for method in ("HEAD", "GET"):
            started = time.perf_counter()
            request = urllib.request.Request(f"{url}/", method=method)
            with pytest.raises(urllib.error.HTTPError) as error:
                urllib.request.urlopen(request, timeout=5)
            with error.value:
                body = error.value.read()
                assert error.value.code == 404  # not 401, nor the random 5xx/429
                assert error.value.headers["x-request-id"].startswith("req_")
            assert time.perf_counter() - started < 1
            assert body == b"" if method == "HEAD" else json.loads(body)["error"]["message"]
        request = urllib.request.Request(f"{url}/", headers={"x-api-key": "k"})
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(request, timeout=5)
        with error.value:
            assert json.loads(error.value.read())["error"]["type"] == "not_found_error"


# --- Codex ---------------------------------------------------------------------------------


def test_codex_request_gets_text_and_no_accidental_cache(oai: openai.OpenAI) -> None:
    items = codex_input("reply with the word ok tokens:12")
    response = oai.responses.create(model=CODEX_MODEL, input=items, **CODEX_EXTRAS)
    assert response.status == "completed" and response.usage is not None
    assert [item.type for item in response.output] == ["reasoning", "message"]
    assert response.usage.output_tokens == 12
    assert response.usage.input_tokens_details.cached_tokens == 0
    # 3 messages (the tool list is none) and 3 tools, counted inside their namespaces
    assert response.usage.input_tokens == -(-count_chars(items) // 4) + 4 * 3 + 8 * 3 + 3


def test_codex_custom_exec_tool_streams_its_input(oai: openai.OpenAI) -> None:
    script = 'const r = await tools.exec_command({cmd: "echo hi"}); text(r);'
    events = list(
        oai.responses.create(
            model=CODEX_MODEL,
            input=codex_input(f"use tool exec `{script}`"),
            stream=True,
            **CODEX_EXTRAS,
        )
    )
    names = [event.type for event in events]
    deltas = [e.delta for e in events if e.type == "response.custom_tool_call_input.delta"]
    assert names[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",  # reasoning
        "response.output_item.done",
    ]
    assert names[4] == "response.output_item.added" and len(deltas) == 5
    assert names[-3:] == [
        "response.custom_tool_call_input.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert "".join(deltas) == script
    added, done = events[4], events[-2]
    assert added.type == "response.output_item.added" and done.type == "response.output_item.done"
    assert added.item.type == done.item.type == "custom_tool_call"
    assert (added.item.input, done.item.input, done.item.name) == ("", script, "exec")
    assert done.item.namespace == "functions" and done.item.call_id.startswith("call_")
    input_done = events[-3]
    assert input_done.type == "response.custom_tool_call_input.done"
    assert (input_done.input, input_done.item_id) == (script, done.item.id)
    final = events[-1]
    assert final.type == "response.completed" and final.response.output[1] == done.item


def test_codex_function_tools_in_namespaces(oai: openai.OpenAI) -> None:
    response = oai.responses.create(model=CODEX_MODEL, input=codex_input("use tool clock.sleep"))
    call = response.output[1]
    assert call.type == "function_call" and (call.name, call.namespace) == ("sleep", "clock")
    arguments = json.loads(call.arguments)
    assert arguments == {"duration_ms": 1} and type(arguments["duration_ms"]) is int
    with oai.responses.stream(model=CODEX_MODEL, input=codex_input("use tool wait")) as stream:
        deltas = [e.delta for e in stream if e.type == "response.function_call_arguments.delta"]
        final = stream.get_final_response()
    streamed = final.output[1]
    assert streamed.type == "function_call" and streamed.name == "wait"
    assert json.loads("".join(deltas)) == json.loads(streamed.arguments) == {"cell_id": "mock"}


def test_codex_tool_output_gets_a_text_answer(oai: openai.OpenAI) -> None:
    items = codex_input("use tool exec `text(1)` tokens:14")
    first = oai.responses.create(model=CODEX_MODEL, input=items)
    call = first.output[1]
    assert call.type == "custom_tool_call"
    follow_up: Any = [
        *items,
        first.output[0].model_dump(exclude_none=True),
        call.model_dump(exclude_none=True),
        {"type": "custom_tool_call_output", "call_id": call.call_id, "output": "1"},
    ]
    second = oai.responses.create(model=CODEX_MODEL, input=follow_up)
    assert [item.type for item in second.output] == ["reasoning", "message"]
    assert second.usage is not None and second.usage.output_tokens == 14


def test_chat_tool_message_gets_a_text_answer(oai: openai.OpenAI) -> None:
    tools: Any = [{"type": "function", "function": {"name": "f", "parameters": WAIT_SCHEMA}}]
    messages: Any = [{"role": "user", "content": "use tool f tokens:13"}]
    first = oai.chat.completions.create(model="gpt-4o", messages=messages, tools=tools)
    calls = first.choices[0].message.tool_calls
    assert calls is not None and calls[0].type == "function"
    history: Any = [
        *messages,
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": calls[0].id, "content": "done"},
        {"role": "system", "content": "late note"},
    ]
    second = oai.chat.completions.create(model="gpt-4o", messages=history, tools=tools)
    assert second.choices[0].finish_reason == "stop"
    assert second.usage is not None and second.usage.completion_tokens == 13


# --- tool arguments ------------------------------------------------------------------------


def test_tool_arguments_are_valid_for_their_schema() -> None:
    schema = {
        "type": "object",
        "properties": {
            "count": {"type": "integer", "exclusiveMinimum": 0, "maximum": 10},
            "size": {"type": "number"},
            "big": {"type": "number", "minimum": 2.5},
            "step": {"type": "integer", "minimum": 3, "multipleOf": 4},
            "mode": {"type": "string", "enum": ["fast", "slow"]},
            "kind": {"const": "k"},
            "status": {"anyOf": [{"type": "string", "enum": ["pending"]}, {"type": "null"}]},
            "block": {"type": "boolean", "default": True},
            "flag": {"type": ["boolean", "null"]},
            "url": {"type": "string", "format": "uri"},
            "query": {"type": "string", "minLength": 10},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "where": {
                "type": "object",
                "properties": {"line": {"type": "integer"}, "note": {"type": "string"}},
                "required": ["line"],
            },
            "optional": {"type": "string"},
        },
        "required": [
            "count", "size", "big", "step", "mode", "kind", "status", "block", "flag", "url",
            "query", "tags", "where",
        ],
    }  # fmt: skip
    arguments = tool_arguments(schema)
    assert arguments == {
        "count": 1,
        "size": 1,
        "big": 3,
        "step": 4,
        "mode": "fast",
        "kind": "k",
        "status": "pending",
        "block": True,
        "flag": False,
        "url": "https://example.com/mock",
        "query": "mockmockmo",
        "tags": ["mock", "mock"],
        "where": {"line": 1},
    }
    assert all(type(arguments[name]) is int for name in ("count", "size", "big", "step"))
    assert tool_arguments(schema, payload="ls -l")["url"] == "ls -l"  # first free string
    assert tool_arguments({"type": "object", "properties": {"a": {"type": "string"}}}) == {}
    assert tool_arguments(None) == {} and tool_arguments({"type": "string"}) == {}


def test_use_tool_picks_the_named_tool() -> None:
    tools = [ToolSpec("Agent"), ToolSpec("Bash", BASH_SCHEMA), ToolSpec("apply", custom=True)]
    assert plan_tool_call(tools, "no tools please") is None
    assert plan_tool_call([], "use tool") is None
    first = plan_tool_call(tools, "use tool: run `echo hi`")
    assert first is not None and (first.name, first.arguments) == ("Agent", "{}")
    bash = plan_tool_call(tools, "Please USE TOOL bash with `echo hi`")
    assert bash is not None and json.loads(bash.arguments) == {"command": "echo hi"}
    assert bash.tokens == -(-(len("Bash") + len(bash.arguments)) // 4) + 10
    custom = plan_tool_call(tools, "use tool apply")
    assert custom is not None and (custom.name, custom.arguments) == ("apply", "mock")
