"""Request checks the OpenAI endpoints share, with OpenAI's own error wording."""

from __future__ import annotations

from typing import Any

from tokenwage.mock_upstream.providers import ApiError, check_model_exists
from tokenwage.mock_upstream.tool_calls import ToolSpec

REASONING_MODEL_PREFIXES = ("o", "gpt-5", "gpt-6")
ADDITIONAL_TOOLS = "additional_tools"
"""A Responses input item carrying tools, as Codex sends them for its code-mode models."""


def require_model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if model is None or model == "":
        raise ApiError(400, "you must provide a model parameter")
    if not isinstance(model, str):
        raise ApiError(
            400,
            f"Invalid type for 'model': expected a string, but got {_json_type(model)} instead.",
            param="model",
            code="invalid_type",
        )
    check_model_exists(model)
    return model


def is_reasoning_model(model: str) -> bool:
    return model.startswith(REASONING_MODEL_PREFIXES)


def output_limit(body: dict[str, Any], names: tuple[str, ...], minimum: int) -> int | None:
    """The first of ``names`` present in the body, checked to be an integer >= ``minimum``."""
    for name in names:
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise ApiError(
                400,
                f"Invalid type for '{name}': expected an integer, but got "
                f"{_json_type(value)} instead.",
                param=name,
                code="invalid_type",
            )
        if value < minimum:
            raise ApiError(
                400,
                f"Invalid '{name}': integer below minimum value. Expected a value >= {minimum}, "
                f"but got {value} instead.",
                param=name,
                code="integer_below_min_value",
            )
        return value
    return None


def stream_flags(body: dict[str, Any]) -> tuple[bool, bool]:
    """(stream, include_usage), refusing ``stream_options`` without ``stream`` as OpenAI does."""
    stream = body.get("stream") is True
    options = body.get("stream_options")
    if options is not None and not stream:
        raise ApiError(
            400,
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
            code="invalid_value",
        )
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    return stream, include_usage


def missing(name: str) -> ApiError:
    return ApiError(
        400,
        f"Missing required parameter: '{name}'.",
        param=name,
        code="missing_required_parameter",
    )


def chat_tools(tools: Any) -> list[ToolSpec]:
    """The function tools of a chat completions request (other kinds are never called)."""
    if not isinstance(tools, list):
        return []
    found = []
    for tool in tools:
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            continue
        nested = tool.get("function")
        spec: dict[str, Any] = nested if isinstance(nested, dict) else tool
        if isinstance(spec.get("name"), str) and spec["name"]:
            found.append(ToolSpec(spec["name"], spec.get("parameters")))
    return found


def responses_tools(tools: Any, items: list[Any]) -> list[ToolSpec]:
    """The function and custom tools of a Responses request, namespaces flattened.

    Tools come from the top-level ``tools`` and from ``additional_tools`` input items (where
    Codex puts them for its newer models), in that order.
    """
    found: list[ToolSpec] = []
    _collect_tools(tools, None, found)
    for item in items:
        if isinstance(item, dict) and item.get("type") == ADDITIONAL_TOOLS:
            _collect_tools(item.get("tools"), None, found)
    return found


def _collect_tools(tools: Any, namespace: str | None, found: list[ToolSpec]) -> None:
    if not isinstance(tools, list):
        return
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        kind, name = tool.get("type", "function"), tool.get("name")
        if kind == "namespace" and namespace is None:
            _collect_tools(tool.get("tools"), name if isinstance(name, str) else None, found)
        elif kind in ("function", "custom") and isinstance(name, str) and name:
            schema = tool.get("parameters")
            found.append(ToolSpec(name, schema, custom=kind == "custom", namespace=namespace))


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null"
