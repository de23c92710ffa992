"""The ``use tool`` convention: which tool the mock calls, and the arguments it makes up.

``use tool`` picks the first tool; ``use tool NAME`` the tool called NAME (or
``NAMESPACE.NAME``) when there is one. A backquoted span after it, as in
``use tool Bash `echo hi```, is the payload: the whole input of a free-form (``custom``) tool,
or the value of the first required string argument of a function tool.

Function tool arguments are what a careful model would write: the schema's *required*
properties only (optional ones are left out, as they would change what a real agent does),
each with a value the schema accepts: its ``const``, first ``enum`` value or ``default``,
whole numbers within ``minimum``/``maximum``, strings of at least ``minLength``, arrays of
``minItems`` items, and nested objects built the same way.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from tokenwage.mock_upstream.tokens import CHARS_PER_TOKEN

TOOL_CALL_OVERHEAD_TOKENS = 10
DEFAULT_CUSTOM_INPUT = "mock"
_MAX_DEPTH = 8
_USE_TOOL = re.compile(r"use tools?\b[\s:]*([A-Za-z_][\w.\-]*)?", re.IGNORECASE)
_PAYLOAD = re.compile(r"`([^`]*)`")
_FIXED_KEYWORDS = frozenset({"const", "enum", "anyOf", "oneOf", "allOf"})
_URI_FORMATS = frozenset({"uri", "url", "iri", "uri-reference"})


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool the request offers: a function tool with a JSON schema, or a free-form one."""

    name: str
    schema: Any = None
    custom: bool = False
    namespace: str | None = None

    def answers_to(self, wanted: str) -> bool:
        names = (self.name, f"{self.namespace}.{self.name}" if self.namespace else self.name)
        return wanted in names or wanted.lower() in (name.lower() for name in names)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The call to answer with; ``arguments`` is JSON text, or the raw input of a custom tool."""

    tool: ToolSpec
    arguments: str

    @property
    def name(self) -> str:
        return self.tool.name

    @property
    def tokens(self) -> int:
        """Output tokens of the call: ``ceil((len(name) + len(arguments)) / 4) + 10``."""
        size = len(self.tool.name) + len(self.arguments)
        return -(-size // CHARS_PER_TOKEN) + TOOL_CALL_OVERHEAD_TOKENS


def plan_tool_call(tools: Sequence[ToolSpec], request: str) -> ToolCall | None:
    """The call ``request`` (the user's last words) asks for, or None when it asks for none."""
    match = _USE_TOOL.search(request)
    if match is None or not tools:
        return None
    wanted = match.group(1)
    tool = next((t for t in tools if wanted and t.answers_to(wanted)), tools[0])
    found = _PAYLOAD.search(request, match.end())
    payload = found.group(1) if found else None
    if tool.custom:
        return ToolCall(tool, DEFAULT_CUSTOM_INPUT if payload is None else payload)
    return ToolCall(tool, orjson.dumps(tool_arguments(tool.schema, payload)).decode())


def tool_arguments(schema: Any, payload: str | None = None) -> dict[str, Any]:
    """Arguments for a function tool's JSON schema (see the module docstring)."""
    value = sample_value(schema) if isinstance(schema, dict) else {}
    if not isinstance(value, dict):
        return {}
    if payload is not None:
        properties = schema.get("properties") if isinstance(schema, dict) else None
        for name in value:
            spec = properties.get(name) if isinstance(properties, dict) else None
            if isinstance(value[name], str) and not _is_fixed(spec):
                value[name] = payload
                break
    return value


def sample_value(schema: Any, depth: int = 0) -> Any:
    """One value valid for ``schema`` (the common keywords; ``$ref`` is not followed)."""
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return "mock"
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    if "default" in schema:
        return schema["default"]
    for keyword in ("anyOf", "oneOf", "allOf"):
        branches = schema.get(keyword)
        if isinstance(branches, list) and branches:
            return sample_value(branches[0], depth + 1)
    kind = _kind(schema)
    if kind in ("integer", "number"):
        return _whole_number(schema)
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    if kind == "array":
        count = schema.get("minItems")
        count = count if isinstance(count, int) and count > 0 else 0
        return [sample_value(schema.get("items"), depth + 1) for _ in range(count)]
    if kind == "object":
        return _object(schema, depth)
    return _string(schema)


def _kind(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if isinstance(kind, str):
        return kind
    if "properties" in schema:
        return "object"
    return "array" if "items" in schema else "string"


def _object(schema: dict[str, Any], depth: int) -> dict[str, Any]:
    properties = schema.get("properties")
    required = schema.get("required")
    if not isinstance(properties, dict) or not isinstance(required, list):
        return {}
    return {
        name: sample_value(properties.get(name), depth + 1)
        for name in required
        if isinstance(name, str)
    }


def _whole_number(schema: dict[str, Any]) -> int:
    low, high = 1, None
    if isinstance(schema.get("minimum"), int | float):
        low = math.ceil(schema["minimum"])
    if isinstance(schema.get("exclusiveMinimum"), int | float):
        low = math.floor(schema["exclusiveMinimum"]) + 1
    if isinstance(schema.get("maximum"), int | float):
        high = math.floor(schema["maximum"])
    if isinstance(schema.get("exclusiveMaximum"), int | float):
        high = math.ceil(schema["exclusiveMaximum"]) - 1
    value = max(1, low) if high is None or high >= 1 else low
    step = schema.get("multipleOf")
    if isinstance(step, int) and step > 0:
        value = -(-value // step) * step
    return value if high is None else min(value, max(high, low))


def _string(schema: dict[str, Any]) -> str:
    text = "https://example.com/mock" if schema.get("format") in _URI_FORMATS else "mock"
    shortest = schema.get("minLength")
    if isinstance(shortest, int) and shortest > len(text):
        text = (text * (shortest // len(text) + 1))[:shortest]
    longest = schema.get("maxLength")
    if isinstance(longest, int) and 0 <= longest < len(text):
        text = text[:longest]
    return text


def _is_fixed(spec: Any) -> bool:
    """Whether a property's value is chosen from a list rather than free text."""
    return isinstance(spec, dict) and not _FIXED_KEYWORDS.isdisjoint(spec)
