"""The OpenAI-compatible inbound API: ``/v1/chat/completions``, ``/v1/responses``,
``/v1/embeddings`` (metered) and ``GET /v1/models`` (free).

The request path itself is shared with Anthropic's (``app.py``); what differs per endpoint is
declared here: where the output limit is, how usage is reported, how a stream is tapped.
``GET /v1/models`` answers both dialects (the path is the same).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from tokenwage.core.usage import TokenUsage
from tokenwage.gateway import anthropic_api
from tokenwage.gateway.config import ProviderKind
from tokenwage.gateway.errors import (
    NOT_FOUND,
    REQUEST_ID_HEADER,
    GatewayError,
    Receive,
    Scope,
    Send,
    send_json,
)
from tokenwage.gateway.usage_tap import ChatTap, MeteredApi, ResponsesTap

if TYPE_CHECKING:
    from tokenwage.gateway.app import GatewayApp
    from tokenwage.gateway.metrics import Call

CHAT = MeteredApi(
    endpoint="openai.chat",
    kind="openai",
    path="/v1/chat/completions",
    limit_fields=("max_completion_tokens", "max_tokens"),
    usage_from=TokenUsage.from_openai_chat,
    tap=ChatTap,
    asks_stream_usage=True,  # stream_options.include_usage, hidden again if the client didn't
)
RESPONSES = MeteredApi(
    endpoint="openai.responses",
    kind="openai",
    path="/v1/responses",
    limit_fields=("max_output_tokens",),
    usage_from=TokenUsage.from_openai_responses,
    tap=ResponsesTap,
)
EMBEDDINGS = MeteredApi(
    endpoint="openai.embeddings",
    kind="openai",
    path="/v1/embeddings",
    limit_fields=None,  # no output tokens
    usage_from=TokenUsage.from_openai_chat,  # {"prompt_tokens", "total_tokens"}
    tap=None,
)
METERED = (CHAT, RESPONSES, EMBEDDINGS)


def ask_for_stream_usage(body: dict[str, Any]) -> bool:
    """Set ``stream_options.include_usage``; True when the client had not (so hide it again)."""
    options = body.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage") is True:
        return False
    asked = options if isinstance(options, dict) else {}
    body["stream_options"] = {**asked, "include_usage": True}
    return True


async def list_models(
    gateway: GatewayApp, call: Call, scope: Scope, receive: Receive, send: Send
) -> None:
    """``GET /v1/models[/{id}]``: what the providers list, less what this key may not use.

    Anthropic clients (``x-api-key`` or ``anthropic-version``) get Anthropic's models in
    Anthropic's shape; everyone else OpenAI's.
    """
    inbound = gateway.upstream.inbound(scope["headers"])
    kind: ProviderKind = "anthropic" if inbound.anthropic_shaped else "openai"
    key = await gateway.meter.authenticate(inbound.raw_key)
    entries = await gateway.catalog.entries(kind, inbound, call.request_id)
    allowed = set(gateway.meter.allowed_models(key, [e["id"] for e in entries]))
    entries = [e for e in entries if e["id"] in allowed]
    wanted = scope["path"].removeprefix("/v1/models").removeprefix("/")
    dialect = anthropic_api if kind == "anthropic" else None
    if not wanted:
        body = dialect.models_body(entries) if dialect else models_body(entries)
    else:
        entry = next((e for e in entries if e["id"] == wanted), None)
        if entry is None:
            raise GatewayError(
                NOT_FOUND,
                f"The model {wanted!r} does not exist or you do not have access to it.",
                param="model",
            )
        body = orjson.dumps(entry)
    call.status, call.responded = 200, True
    await send_json(send, 200, body, [(REQUEST_ID_HEADER, call.request_id.encode())])


def models_body(entries: list[dict[str, Any]]) -> bytes:
    """``GET /v1/models``: the models this key may use."""
    return orjson.dumps({"object": "list", "data": entries})
