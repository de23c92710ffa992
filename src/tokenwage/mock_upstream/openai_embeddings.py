"""``POST /v1/embeddings``: small deterministic unit vectors, as floats or base64 float32."""

from __future__ import annotations

import base64
import math
import struct
import zlib
from typing import Any

import orjson

from tokenwage.mock_upstream.asgi import Send, send_json
from tokenwage.mock_upstream.exchange import Exchange
from tokenwage.mock_upstream.openai_params import missing, output_limit, require_model
from tokenwage.mock_upstream.providers import OPENAI, ApiError
from tokenwage.mock_upstream.tokens import CHARS_PER_TOKEN

DEFAULT_DIMENSIONS = 16
MAX_DIMENSIONS = 3072
_MASK64 = (1 << 64) - 1


def embedding_vector(key: int, dimensions: int) -> list[float]:
    """A unit vector that depends only on ``key`` (a 64-bit LCG walked from it)."""
    state = key & _MASK64
    values = []
    for _ in range(dimensions):
        state = (state * 6364136223846793005 + 1442695040888963407) & _MASK64
        values.append((state >> 11) / float(1 << 53) * 2.0 - 1.0)
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def _inputs(raw: Any) -> list[tuple[int, int]]:
    """(tokens, vector key) of each input: a string, strings, a token array or token arrays."""
    if isinstance(raw, str):
        raw = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(t, int) for t in raw):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise ApiError(
            400,
            "'input' must be a non-empty string, array of strings, or array of token arrays.",
            param="input",
            code="invalid_value",
        )
    found = []
    for item in raw:
        if isinstance(item, str) and item:
            found.append((-(-len(item) // CHARS_PER_TOKEN), zlib.crc32(item.encode())))
        elif isinstance(item, list) and item and all(isinstance(t, int) for t in item):
            found.append((len(item), zlib.crc32(orjson.dumps(item))))
        else:
            raise ApiError(
                400,
                "Invalid 'input': every item must be a non-empty string or token array.",
                param="input",
                code="invalid_value",
            )
    return found


async def embeddings(exchange: Exchange, send: Send) -> None:
    body = OPENAI.parse(exchange)
    model = require_model(body)
    if body.get("input") is None:
        raise missing("input")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise ApiError(
            400,
            f"Invalid 'encoding_format': {encoding!r}; expected 'float' or 'base64'.",
            param="encoding_format",
            code="invalid_value",
        )
    dimensions = output_limit(body, ("dimensions",), 1) or DEFAULT_DIMENSIONS
    if dimensions > MAX_DIMENSIONS:
        raise ApiError(
            400,
            f"Invalid 'dimensions': {dimensions}; at most {MAX_DIMENSIONS} are supported.",
            param="dimensions",
            code="invalid_value",
        )
    data = []
    total = 0
    for index, (tokens, key) in enumerate(_inputs(body["input"])):
        total += tokens
        vector = embedding_vector(key, dimensions)
        encoded: list[float] | str = vector
        if encoding == "base64":
            encoded = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    payload = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": total, "total_tokens": total},
    }
    await send_json(send, 200, orjson.dumps(payload), OPENAI.headers(exchange))
