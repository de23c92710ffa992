"""The two provider dialects: how each authenticates, names request ids and shapes errors."""

from __future__ import annotations

from typing import Any

import orjson

from tokenwage.mock_upstream.asgi import Header
from tokenwage.mock_upstream.exchange import Exchange

UNKNOWN_MODEL_PREFIX = "unknown-"
_PROBE_METHODS = frozenset({"GET", "HEAD"})


class ApiError(Exception):
    """A provider-neutral error; each :class:`Provider` renders it in its own JSON shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.kind = kind


def parse_object(exchange: Exchange, invalid_json_message: str) -> dict[str, Any]:
    try:
        data = orjson.loads(exchange.body)
    except orjson.JSONDecodeError:
        raise ApiError(400, invalid_json_message) from None
    if not isinstance(data, dict):
        raise ApiError(400, f"The request body must be a JSON object, got {type(data).__name__}.")
    return data


def bearer_token(exchange: Exchange) -> str:
    value = exchange.headers.get("authorization", "")
    if value[:7].lower() == "bearer ":
        return value[7:].strip()
    return ""


class Provider:
    """What differs between providers outside the endpoints themselves."""

    name = ""
    request_id_header = b""
    fault_statuses: tuple[int, ...] = ()
    invalid_json_message = ""

    def authenticate(self, exchange: Exchange) -> None:
        """Refuse a request without valid credentials.

        ``GET /`` and ``HEAD /`` (Claude Code probes ``HEAD /`` at start-up) are answered at
        once, before the credentials and the random faults, with the 404 the real APIs give
        for their root: an :class:`ApiError` the router sends as it is.
        """
        if exchange.path == "/" and exchange.method in _PROBE_METHODS:
            raise self.not_found(exchange)
        self.check_credentials(exchange)

    def check_credentials(self, exchange: Exchange) -> None:
        raise NotImplementedError

    def not_found(self, exchange: Exchange) -> ApiError:
        raise NotImplementedError

    def error_body(self, error: ApiError, exchange: Exchange) -> bytes:
        raise NotImplementedError

    def fault(self, status: int) -> ApiError:
        raise NotImplementedError

    def models_body(self) -> bytes:
        raise NotImplementedError

    def model_body(self, model_id: str) -> bytes:
        raise NotImplementedError

    def headers(self, exchange: Exchange) -> list[Header]:
        return [(self.request_id_header, exchange.request_id.encode())]

    def error_headers(self, error: ApiError, exchange: Exchange) -> list[Header]:
        headers = self.headers(exchange)
        if error.status == 429:
            headers.append((b"retry-after", b"1"))
        return headers

    def parse(self, exchange: Exchange) -> dict[str, Any]:
        return parse_object(exchange, self.invalid_json_message)

    def check_key(self, key: str, exchange: Exchange) -> bool:
        expected = exchange.config.expected_api_key
        return expected is None or key == expected


def _mask(key: str) -> str:
    return key[:3] + "*" * 8 + key[-4:] if len(key) > 8 else "*" * len(key)


_OPENAI_MODELS = (
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-5",
    "gpt-5-mini",
    "gpt-5.4",
    "gpt-5.4-mini",
    "o3",
    "o4-mini",
    "text-embedding-3-small",
    "text-embedding-3-large",
)
_OPENAI_FAULTS = {
    429: ("requests", "rate_limit_exceeded", "Rate limit reached (simulated by mock-upstream)."),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


def _openai_model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 1_700_000_000, "owned_by": "openai"}


class OpenAIProvider(Provider):
    name = "openai"
    request_id_header = b"x-request-id"
    fault_statuses = (500, 503, 429)
    invalid_json_message = (
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
        "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
        "sent was not valid JSON.)"
    )

    def check_credentials(self, exchange: Exchange) -> None:
        key = bearer_token(exchange)
        if not key:
            raise ApiError(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        if not self.check_key(key, exchange):
            raise ApiError(
                401, f"Incorrect API key provided: {_mask(key)}.", code="invalid_api_key"
            )

    def not_found(self, exchange: Exchange) -> ApiError:
        return ApiError(404, f"Invalid URL ({exchange.method} {exchange.path})")

    def error_body(self, error: ApiError, exchange: Exchange) -> bytes:
        kind = error.kind
        if kind is None:
            kind = "server_error" if error.status >= 500 else "invalid_request_error"
        detail = {"message": error.message, "type": kind, "param": error.param, "code": error.code}
        return orjson.dumps({"error": detail})

    def fault(self, status: int) -> ApiError:
        kind, code, message = _OPENAI_FAULTS.get(
            status, ("server_error", None, f"Simulated HTTP {status} from mock-upstream.")
        )
        if status < 500 and status not in _OPENAI_FAULTS:
            kind = "invalid_request_error"
        return ApiError(status, message, code=code, kind=kind)

    def models_body(self) -> bytes:
        return _OPENAI_MODELS_BODY

    def model_body(self, model_id: str) -> bytes:
        check_model_exists(model_id)
        return orjson.dumps(_openai_model(model_id))


_ANTHROPIC_MODELS = (
    ("claude-opus-4-6", "Claude Opus 4.6", "2026-02-01T00:00:00Z"),
    ("claude-sonnet-4-6", "Claude Sonnet 4.6", "2026-02-01T00:00:00Z"),
    ("claude-haiku-4-5-20251001", "Claude Haiku 4.5", "2025-10-01T00:00:00Z"),
)
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_ANTHROPIC_FAULTS = {
    429: "Number of request tokens has exceeded your rate limit (simulated by mock-upstream).",
    500: "Internal server error",
    529: "Overloaded",
}


_ANTHROPIC_BY_ID = {model_id: (name, created) for model_id, name, created in _ANTHROPIC_MODELS}


def _anthropic_model(model_id: str) -> dict[str, Any]:
    display_name, created_at = _ANTHROPIC_BY_ID.get(model_id, (model_id, "2025-01-01T00:00:00Z"))
    return {
        "type": "model",
        "id": model_id,
        "display_name": display_name,
        "created_at": created_at,
    }


class AnthropicProvider(Provider):
    name = "anthropic"
    request_id_header = b"request-id"
    fault_statuses = (500, 529, 429)
    invalid_json_message = "There was an error parsing the body of your request: invalid JSON."

    def check_credentials(self, exchange: Exchange) -> None:
        key = exchange.headers.get("x-api-key", "").strip() or bearer_token(exchange)
        if not key:
            raise ApiError(401, "x-api-key header is required")
        if not self.check_key(key, exchange):
            raise ApiError(401, "invalid x-api-key")
        if not exchange.headers.get("anthropic-version"):
            raise ApiError(400, "anthropic-version: header is required")

    def not_found(self, exchange: Exchange) -> ApiError:
        return ApiError(404, "Not Found")

    def error_body(self, error: ApiError, exchange: Exchange) -> bytes:
        kind = error.kind or _ANTHROPIC_TYPES.get(
            error.status, "api_error" if error.status >= 500 else "invalid_request_error"
        )
        return orjson.dumps(
            {
                "type": "error",
                "error": {"type": kind, "message": error.message},
                "request_id": exchange.request_id,
            }
        )

    def fault(self, status: int) -> ApiError:
        message = _ANTHROPIC_FAULTS.get(status, f"Simulated HTTP {status} from mock-upstream.")
        return ApiError(status, message)

    def models_body(self) -> bytes:
        return _ANTHROPIC_MODELS_BODY

    def model_body(self, model_id: str) -> bytes:
        check_model_exists(model_id, anthropic=True)
        return orjson.dumps(_anthropic_model(model_id))


_OPENAI_MODELS_BODY = orjson.dumps(
    {"object": "list", "data": [_openai_model(model_id) for model_id in _OPENAI_MODELS]}
)
_ANTHROPIC_MODELS_BODY = orjson.dumps(
    {
        "data": [_anthropic_model(model_id) for model_id, _, _ in _ANTHROPIC_MODELS],
        "has_more": False,
        "first_id": _ANTHROPIC_MODELS[0][0],
        "last_id": _ANTHROPIC_MODELS[-1][0],
    }
)


def check_model_exists(model: str, *, anthropic: bool = False) -> None:
    """Any model name is served, except those starting with ``unknown-`` (a 404, for tests)."""
    if not model.startswith(UNKNOWN_MODEL_PREFIX):
        return
    if anthropic:
        raise ApiError(404, f"model: {model}")
    raise ApiError(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        code="model_not_found",
    )


OPENAI = OpenAIProvider()
ANTHROPIC = AnthropicProvider()
