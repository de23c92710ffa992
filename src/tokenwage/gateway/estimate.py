"""What the gateway reads from a request body before forwarding it, and cheap token estimates.

The body is read once (:func:`read_body`), decompressed if the client compressed it and
parsed once with orjson (:func:`json_object`); no pydantic on this path.

Estimates: the prompt before forwarding, the output of a stream cut short. No tokenizer:
about four bytes of JSON a token, which over-counts a little (keys, quotes, the model name)
and so errs on the side of a larger hold. Inline media would be wildly
over-counted that way (a 1 MB base64 image is ~1,600 tokens, not 250,000), so when the body
contains base64 data those strings are counted at a flat rate instead.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

import orjson

from tokenwage.gateway.errors import (
    BAD_REQUEST,
    REQUEST_TOO_LARGE,
    UNSUPPORTED_ENCODING,
    GatewayError,
    Receive,
)

MAX_BODY_BYTES = 64 * 1024 * 1024
BYTES_PER_TOKEN = 4
IMAGE_TOKENS = 1_600
"""What one inline image is counted as (large images cost about this after resizing)."""
DOCUMENT_BYTES_PER_TOKEN = 32
"""Base64 documents (PDFs) hold far fewer tokens per byte than text."""
_MIN_MEDIA_CHARS = 1_024


def prompt_tokens(body: Mapping[str, Any], raw: bytes) -> int:
    """Estimated prompt tokens of a request whose JSON bytes are ``raw`` (parsed: ``body``)."""
    estimate = len(raw) // BYTES_PER_TOKEN + 1
    if b"base64" not in raw:
        return estimate
    media_chars, media_tokens = _media(body)
    return max(1, estimate - media_chars // BYTES_PER_TOKEN + media_tokens)


def output_tokens(chars: int) -> int:
    """Estimated tokens of ``chars`` characters of generated text."""
    return -(-chars // BYTES_PER_TOKEN)


def max_output_tokens(body: Mapping[str, Any], fields: tuple[str, ...]) -> int | None:
    """The first positive integer limit among ``fields``; None when the client set none."""
    for field in fields:
        value = body.get(field)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _media(body: Mapping[str, Any]) -> tuple[int, int]:
    """(characters of inline base64 media, tokens they are counted as instead)."""
    chars = tokens = 0
    stack: list[Any] = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())  # Anthropic's raw base64 never starts with "data:"
            if node.get("type") == "base64" and isinstance(node.get("data"), str):
                data: str = node["data"]
                media_type = node.get("media_type")
                is_image = isinstance(media_type, str) and media_type.startswith("image/")
                chars, tokens = _count(data, is_image, chars, tokens)
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str) and node.startswith("data:") and ";base64," in node[:100]:
            chars, tokens = _count(node, node.startswith("data:image/"), chars, tokens)
    return chars, tokens


def _count(data: str, is_image: bool, chars: int, tokens: int) -> tuple[int, int]:
    if len(data) < _MIN_MEDIA_CHARS:
        return chars, tokens
    if is_image:
        return chars + len(data), tokens + IMAGE_TOKENS
    return chars + len(data), tokens + len(data) // DOCUMENT_BYTES_PER_TOKEN


class ClientGone(Exception):
    """The client hung up before its request body was complete."""


async def read_body(receive: Receive, limit: int = MAX_BODY_BYTES) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        part: bytes = message.get("body", b"")
        if not message.get("more_body", False) and not parts:
            if len(part) > limit:
                raise GatewayError(
                    REQUEST_TOO_LARGE, f"request bodies are limited to {limit} bytes"
                )
            return part
        size += len(part)
        if size > limit:
            raise GatewayError(REQUEST_TOO_LARGE, f"request bodies are limited to {limit} bytes")
        parts.append(part)
        if not message.get("more_body", False):
            return b"".join(parts)


def json_object(raw: bytes, content_encoding: str = "") -> tuple[bytes, dict[str, Any]]:
    """(the body as sent upstream, parsed): a JSON object or a provider-shaped 400."""
    if content_encoding and content_encoding != "identity":
        raw = _decompress(raw, content_encoding)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise GatewayError(
            BAD_REQUEST, f"We could not parse the JSON body of your request: {exc}"
        ) from None
    if not isinstance(body, dict):
        raise GatewayError(
            BAD_REQUEST, f"The request body must be a JSON object, got {type(body).__name__}."
        )
    return raw, body


def model_of(body: Mapping[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise GatewayError(
            BAD_REQUEST, "you must provide a model parameter (a non-empty string)", param="model"
        )
    if len(model) > MAX_MODEL_CHARS:
        raise GatewayError(
            BAD_REQUEST,
            f"the model parameter is {len(model)} characters long; model names are at most "
            f"{MAX_MODEL_CHARS}",
            param="model",
        )
    return model


MAX_MODEL_CHARS = 256
"""Longer model names are refused (no provider has one; they would only bloat records)."""


def _decompress(raw: bytes, encoding: str) -> bytes:
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise GatewayError(
            UNSUPPORTED_ENCODING,
            f"content-encoding {encoding!r} is not supported; send gzip or an uncompressed body",
        )
    inflater = zlib.decompressobj(wbits=47)  # 32 + 15: gzip or zlib header, detected
    try:
        data = inflater.decompress(raw, MAX_BODY_BYTES)
    except zlib.error as exc:
        raise GatewayError(BAD_REQUEST, f"the {encoding} request body is corrupt: {exc}") from None
    if inflater.unconsumed_tail:
        raise GatewayError(
            REQUEST_TOO_LARGE, f"request bodies are limited to {MAX_BODY_BYTES} bytes"
        )
    return data
