"""Cursor team usage events (Admin API) as imported usage, attributed by e-mail.

``POST https://api.cursor.com/teams/filtered-usage-events`` (HTTP Basic, the admin key as
user name) with ``{"startDate": epoch_ms, "endDate": epoch_ms, "page": 1, "pageSize": N,
"email"?: str}`` answers::

    {"totalUsageEventsCount": int,
     "pagination": {"numPages", "currentPage", "pageSize", "hasNextPage", "hasPreviousPage"},
     "usageEvents": [{"timestamp": "epoch_ms", "userEmail", "model", "kind", "maxMode",
                      "requestsCosts", "isTokenBasedCall", "isFreeBugbot", "chargedCents"?,
                      "tokenUsage"?: {"inputTokens", "outputTokens", "cacheWriteTokens",
                                      "cacheReadTokens", "totalCents"}}],
     "period": {"startDate", "endDate"}}

(The dashboard's own export names the array ``usageEventsDisplay``; both are read.) A file is
one response or a JSON array of them.

* ``inputTokens`` is taken as uncached input (cache reads and writes are reported beside
  it), ``cacheWriteTokens`` as 5-minute cache writes.
* ``reported_cost``: ``chargedCents`` when present (what the team is billed, fees included),
  else ``tokenUsage.totalCents``.
* Events have no id: the key is a digest of the whole event, plus its occurrence number when
  identical events repeat, so a re-import of the same (or an overlapping) export adds nothing.
* The provider is inferred from the model name (``claude-*`` Anthropic, ``gpt-*``/``o*``
  OpenAI, ``gemini-*`` Google, ``grok-*`` xAI, ``deepseek-*`` DeepSeek, else Cursor's own);
  Cursor's ``claude-4.5-sonnet`` naming becomes Anthropic's ``claude-sonnet-4-5`` and a
  ``-thinking`` suffix is dropped (same price); the raw name is kept in ``extra``.
* Events without tokens (request-priced calls) and free Bugbot events are left out.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from tokenwage.core.imported import Identity, IdentityKind, ImportedUsage
from tokenwage.core.usage import TokenUsage
from tokenwage.importers.report_json import Report, cents, digest_key, load_json

SOURCE = "cursor"
_CLAUDE = re.compile(r"^claude-(\d+)(?:\.(\d+))?-(opus|sonnet|haiku)(.*)$")
_PROVIDERS = (
    (re.compile(r"^claude"), "anthropic"),
    (re.compile(r"^(gpt|o\d|chatgpt|codex)"), "openai"),
    (re.compile(r"^gemini"), "google"),
    (re.compile(r"^grok"), "x-ai"),
    (re.compile(r"^deepseek"), "deepseek"),
)


def parse_events(body: bytes, path: str) -> list[ImportedUsage]:
    """Records from a ``filtered-usage-events`` response (or an array of them)."""
    return events_from_document(load_json(body, path), path)


def events_from_document(doc: Any, path: str) -> list[ImportedUsage]:
    report = Report(path)
    records = []
    occurrences: Counter[str] = Counter()
    for page_at, page in report.pages(doc, "Cursor usage events"):
        key = (
            "usageEvents"
            if "usageEvents" in page or "usageEventsDisplay" not in page
            else ("usageEventsDisplay")
        )
        for where, event in report.objects(page, key, page_at):
            record = _event(report, where, event, occurrences)
            if record is not None:
                records.append(record)
    report.done()
    return records


def model_and_provider(raw: str) -> tuple[str, str]:
    """Cursor's model name as the provider names it, and that provider."""
    model = raw.strip().lower().removeprefix("premium:").removesuffix("-thinking")
    found = _CLAUDE.match(model)
    if found:
        major, minor, family, rest = found.groups()
        version = major + (f"-{minor}" if minor else "")
        # Anthropic names Claude 4 onwards family first (claude-sonnet-4-5), Claude 3 after
        model = (
            f"claude-{family}-{version}{rest}"
            if int(major) >= 4
            else (f"claude-{version}-{family}{rest}")
        )
    for pattern, provider in _PROVIDERS:
        if pattern.match(model):
            return model, provider
    return model, "cursor"


def _event(
    report: Report, where: str, event: Mapping[str, Any], occurrences: Counter[str]
) -> ImportedUsage | None:
    used = report.unix_millis(event, "timestamp", where)
    raw_model = report.text(event, "model", where, required=True)
    email = report.text(event, "userEmail", where)
    tokens = event.get("tokenUsage")
    if tokens is not None and not isinstance(tokens, Mapping):
        report.fail(f"{where}.tokenUsage", "expected an object")
        return None
    tokens = tokens or {}
    at = f"{where}.tokenUsage"
    usage = TokenUsage(
        input_tokens=report.count(tokens, "inputTokens", at),
        output_tokens=report.count(tokens, "outputTokens", at),
        cache_read_tokens=report.count(tokens, "cacheReadTokens", at),
        cache_write_tokens=report.count(tokens, "cacheWriteTokens", at),
    )
    charged = report.amount(event, "chargedCents", where)
    total = report.amount(tokens, "totalCents", at)
    if used is None or raw_model is None or not usage.total_tokens:
        return None
    if event.get("isFreeBugbot") is True:
        return None
    amount = charged if charged is not None else total
    model, provider = model_and_provider(raw_model)
    kind = report.text(event, "kind", where)
    fingerprint = digest_key(
        "e",
        {
            "timestamp": str(event.get("timestamp")),
            "email": email,
            "model": raw_model,
            "kind": kind,
            "tokens": [
                usage.input_tokens,
                usage.output_tokens,
                usage.cache_read_tokens,
                usage.cache_write_tokens,
            ],
            "cents": str(amount),
        },
    )
    occurrences[fingerprint] += 1
    extra = {"cursor_model": raw_model}
    if kind:
        extra["kind"] = kind
    if event.get("maxMode") is True:
        extra["max_mode"] = "true"
    return ImportedUsage(
        source=SOURCE,
        key=f"{used.strftime('%Y%m%dT%H%M%S')}:{fingerprint[2:]}:{occurrences[fingerprint]}",
        used_utc=used,
        provider=provider,
        model=model,
        usage=usage,
        identities=(Identity(IdentityKind.EMAIL, email),) if email else (),
        reported_cost=cents(amount) if amount is not None and amount > 0 else None,
        extra=extra,
    )
