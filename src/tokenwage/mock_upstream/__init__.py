"""``tokenwage mock-upstream``: a simulated AI provider speaking OpenAI's and Anthropic's APIs.

It is the only fake in the test suite and the baseline of the gateway benchmark, so it is a raw
ASGI app on uvicorn (uvloop + httptools) with orjson, and it writes nothing to disk.

Endpoints
    OpenAI: ``POST /v1/chat/completions``, ``POST /v1/responses``, ``POST /v1/embeddings``.
    Anthropic: ``POST /v1/messages``, ``POST /v1/messages/count_tokens``.
    Both: ``GET /v1/models`` and ``GET /v1/models/{id}`` (Anthropic's shape when the request
    has ``x-api-key`` or ``anthropic-version``), and ``GET /health`` (no auth). ``GET /`` and
    ``HEAD /`` (Claude Code probes ``HEAD /``) get the provider's 404 at once, without auth.
    Unknown body fields and query strings (``?beta=true``, ``thinking``, ``context_management``,
    ``output_config``, ``metadata``, ``store``, ``include``, ``reasoning``,
    ``prompt_cache_key``, ``client_metadata``...) are accepted and ignored.

Token accounting (deterministic; see :mod:`tokenwage.mock_upstream.tokens`)
    prompt tokens = ceil(C / 4) + 4 per message (a separate system prompt or ``instructions``
    counts as one) + 8 per tool + 3, where C counts the characters of every string in the
    messages, system prompt and tools, except the values of ``type`` and ``role`` keys. Tools in
    a Responses ``namespace`` or ``additional_tools`` input item count one by one.
    Output tokens = min(the request's limit, N) where N is forced by ``tokens:N`` in the user's
    last words, and otherwise ``16 + (crc32(those words) + prompt tokens) % 48`` (at most
    32768). The answer is N three-letter words: ceil(len(text) / 4) == N. OpenAI models whose
    names start with ``o``, ``gpt-5`` or ``gpt-6`` spend (N + 2) // 4 of those tokens on
    reasoning (hidden, but counted in ``reasoning_tokens`` and in the output total). Embeddings
    cost ceil(chars / 4) a string or one token per array element; vectors are 16 floats unless
    ``dimensions`` says otherwise.

The user's last words
    The text of the last user message that is not made of tool results only (an Anthropic
    ``tool_result`` turn, an OpenAI ``tool`` message or ``*_output`` item does not count), and
    skipping system text wherever it is: Anthropic ``role: "system"`` turns (Claude Code sends
    one after the prompt; they are extra system text), OpenAI ``system``/``developer`` messages
    and ``additional_tools`` items.

Magic conventions for tests
    ``tokens:N`` in the user's last words
        forces N output tokens (before the max-tokens cap), for every step of an agent's loop.
    ``[mock:cache]`` / ``[mock:cache:N]`` / ``[mock:cache-write]`` / ``[mock:cache-write:N]``
        exactly so, in the system text: N (or half the prompt) tokens read from / written to the
        prompt cache. OpenAI reports them in ``cached_tokens``/``cache_write_tokens`` inside
        ``prompt_tokens``; Anthropic in ``cache_read_input_tokens``/
        ``cache_creation_input_tokens``, outside ``input_tokens``. (A bare "cache" is just text:
        real agents' prompts are full of it.)
    ``use tool`` / ``use tool NAME`` / ``use tool NAME `payload``` in the user's last words
        when the request has tools and nothing but system text came after those words: a call
        of tool NAME (or of the first tool when no tool is called NAME), with ``tool_calls`` /
        ``tool_use`` / a Responses ``function_call`` (or ``custom_tool_call`` for a free-form
        ``custom`` tool) and finish reason ``tool_calls`` or stop reason ``tool_use``. The
        backquoted payload is a custom tool's whole input, or the first required string
        argument of a function tool; other arguments are the schema's required properties with
        valid values (see :mod:`tokenwage.mock_upstream.tool_calls`). Tool results as the latest
        turn get a text answer, so an agent's loop ends after one call.
    a model named ``unknown-...``
        404 in the provider's shape (any other model name is served).
    ``max_tokens`` / ``max_output_tokens`` smaller than N
        cuts the answer: ``length``, ``max_tokens``, or a Responses ``incomplete`` status.

Faults
    ``MockConfig``: ``latency_ms`` before the first byte, ``chunk_delay_ms`` between stream
    chunks, ``error_rate`` of requests failed with a seeded RNG (OpenAI 500/503/429, Anthropic
    500/529/429; 429s carry ``retry-after: 1``). Header ``x-mock-fault`` (comma-separated) forces
    one request's fault: ``status-NNN`` (that status, provider-shaped), ``drop-mid-stream`` (the
    connection is cut halfway through the body or the content chunks), ``error-mid-stream`` (the
    stream ends with the provider's error event), ``no-usage`` (usage left out everywhere).

Auth and ids
    OpenAI wants ``Authorization: Bearer``; Anthropic ``x-api-key`` (or a Bearer token, as
    ``auth_token`` clients send) and ``anthropic-version``. ``MockConfig.expected_api_key``, when
    set, is the only key accepted. Every response carries ``x-request-id`` (OpenAI) or
    ``request-id`` (Anthropic); body ids (``chatcmpl-``, ``resp_``, ``msg_``, ``call_``,
    ``toolu_``) share the request's hex, ``blake2b(request counter, key=seed)``, so the n-th
    request after start-up always gets the same ids (per worker process when ``workers > 1``).
"""

from tokenwage.mock_upstream.app import create_app, serve
from tokenwage.mock_upstream.config import MockConfig

__all__ = ["MockConfig", "create_app", "serve"]
