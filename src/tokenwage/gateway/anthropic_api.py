"""The Anthropic-compatible inbound API: ``/v1/messages`` (metered),
``/v1/messages/count_tokens`` and ``GET /v1/models`` (free, but the key must be valid).

Claude Code calls these with ``?beta=true``; the query string is forwarded as it came.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from tokenwage.core.usage import TokenUsage
from tokenwage.gateway.errors import Receive, Scope, Send
from tokenwage.gateway.estimate import json_object, model_of, read_body
from tokenwage.gateway.usage_tap import MessagesTap, MeteredApi

if TYPE_CHECKING:
    from tokenwage.gateway.app import GatewayApp
    from tokenwage.gateway.metrics import Call

MESSAGES = MeteredApi(
    endpoint="anthropic.messages",
    kind="anthropic",
    path="/v1/messages",
    limit_fields=("max_tokens",),
    usage_from=TokenUsage.from_anthropic,
    tap=MessagesTap,
)
METERED = (MESSAGES,)
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
COUNT_TOKENS_ENDPOINT = "anthropic.count_tokens"


def models_body(entries: list[dict[str, Any]]) -> bytes:
    """``GET /v1/models`` in Anthropic's paginated shape, as one page."""
    return orjson.dumps(
        {
            "data": entries,
            "has_more": False,
            "first_id": entries[0]["id"] if entries else None,
            "last_id": entries[-1]["id"] if entries else None,
        }
    )


async def count_tokens(
    gateway: GatewayApp, call: Call, scope: Scope, receive: Receive, send: Send
) -> None:
    """``POST /v1/messages/count_tokens``: free, but only for a valid key."""
    inbound = gateway.upstream.inbound(scope["headers"])
    raw, body = json_object(await read_body(receive), inbound.content_encoding)
    call.model = model_of(body)
    provider = gateway.provider("anthropic", call.model)
    await gateway.meter.authenticate(inbound.raw_key)
    response = await gateway.forward(call, provider, scope, inbound, raw)
    await gateway.reply(call, response, send)
