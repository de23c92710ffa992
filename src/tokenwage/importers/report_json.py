"""Reading provider report JSON the same way for every admin-API importer.

* Numbers are exact: JSON fractions become :class:`~decimal.Decimal`, never ``float``.
* Problems name the file and the JSON path (``data[2].results[0].model``) and are all
  collected before :class:`~tokenwage.core.errors.BadFile` is raised, so one run lists them all.
* Unknown fields are ignored; a missing required field is a problem.
* Keys are deterministic (a digest of the bucket and its group-by values), so importing the
  same export twice adds nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from tokenwage.core.errors import BadFile, LineProblem
from tokenwage.core.imported import ImportedUsage
from tokenwage.core.money import Money


@dataclass(frozen=True)
class JsonProblem(LineProblem):
    """A problem at a JSON path (``line`` is only known for syntax errors)."""

    where: str = ""

    def __str__(self) -> str:
        return f"at {self.where}: {self.message}" if self.where else super().__str__()


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def load_json(body: bytes, path: str) -> Any:
    """Parse ``body`` with exact decimals; bad UTF-8 or JSON is a :class:`BadFile`."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadFile(path, [LineProblem(1, f"not UTF-8 text (byte {exc.start})")]) from None
    if not text.strip():
        raise BadFile(path, [LineProblem(1, "empty file; expected a JSON export")])
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        problem = LineProblem(exc.lineno, f"not JSON: {exc.msg} (column {exc.colno})")
        raise BadFile(path, [problem]) from None
    except ValueError as exc:
        raise BadFile(path, [LineProblem(1, f"not JSON: {exc}")]) from None


class Report:
    """Problems found while reading one document; :meth:`done` raises them all at once."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[LineProblem] = []

    def fail(self, where: str, message: str) -> None:
        self.problems.append(JsonProblem(0, message, where))

    def done(self) -> None:
        if self.problems:
            raise BadFile(self.path, self.problems)

    # -- shapes ------------------------------------------------------------------------------
    def pages(self, doc: Any, what: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
        """One page object, or a JSON array of pages (several API responses in one file)."""
        if isinstance(doc, Mapping):
            yield "$", doc
        elif isinstance(doc, list):
            for i, page in enumerate(doc):
                if isinstance(page, Mapping):
                    yield f"[{i}]", page
                else:
                    self.fail(f"[{i}]", f"expected a {what} page (a JSON object)")
        else:
            self.fail("$", f"expected a {what} page: a JSON object, or an array of them")

    def objects(self, node: Mapping[str, Any], key: str, where: str) -> Iterator[tuple[str, Any]]:
        """``(path, item)`` for each object in the array ``node[key]``; missing is a problem."""
        items = node.get(key)
        if not isinstance(items, list):
            got = "missing" if items is None else type(items).__name__
            self.fail(_join(where, key), f"expected an array, got {got}")
            return
        for i, item in enumerate(items):
            at = f"{_join(where, key)}[{i}]"
            if isinstance(item, Mapping):
                yield at, item
            else:
                self.fail(at, "expected a JSON object")

    # -- fields ------------------------------------------------------------------------------
    def text(
        self, node: Mapping[str, Any], key: str, where: str, *, required: bool = False
    ) -> str | None:
        value = node.get(key)
        if value is None or value == "":
            if required:
                self.fail(_join(where, key), "missing")
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            self.fail(_join(where, key), f"expected text, got {type(value).__name__}")
            return None
        return str(value)

    def count(
        self, node: Mapping[str, Any], key: str, where: str, *, required: bool = False
    ) -> int:
        """A non-negative whole number (digits in a string are accepted); missing is 0."""
        value = node.get(key)
        if value is None:
            if required:
                self.fail(_join(where, key), "missing")
            return 0
        number = _whole(value)
        if number is None or number < 0:
            self.fail(_join(where, key), f"expected a count of tokens, got {value!r}")
            return 0
        return number

    def amount(
        self, node: Mapping[str, Any], key: str, where: str, *, required: bool = False
    ) -> Decimal | None:
        """An exact decimal from a JSON number or a numeric string."""
        value = node.get(key)
        if value is None:
            if required:
                self.fail(_join(where, key), "missing")
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            self.fail(_join(where, key), f"expected a number, got {value!r}")
            return None
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            number = Decimal("NaN")
        if not number.is_finite():
            self.fail(_join(where, key), f"expected a number, got {value!r}")
            return None
        return number

    def unix_seconds(self, node: Mapping[str, Any], key: str, where: str) -> datetime | None:
        seconds = _whole(node.get(key))
        if seconds is None or not 0 <= seconds < 253402300800:
            self.fail(_join(where, key), f"expected Unix seconds, got {node.get(key)!r}")
            return None
        return datetime.fromtimestamp(seconds, UTC)

    def unix_millis(self, node: Mapping[str, Any], key: str, where: str) -> datetime | None:
        millis = _whole(node.get(key))
        if millis is None or not 0 <= millis < 253402300800000:
            self.fail(_join(where, key), f"expected Unix milliseconds, got {node.get(key)!r}")
            return None
        return datetime.fromtimestamp(millis // 1000, UTC) + timedelta(milliseconds=millis % 1000)

    def rfc3339(self, node: Mapping[str, Any], key: str, where: str) -> datetime | None:
        value = node.get(key)
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if not isinstance(value, str) or parsed is None or parsed.tzinfo is None:
            self.fail(
                _join(where, key),
                f"expected an RFC 3339 time like 2026-01-31T00:00:00Z, got {value!r}",
            )
            return None
        return parsed.astimezone(UTC)

    def day(self, node: Mapping[str, Any], key: str, where: str) -> date | None:
        value = node.get(key)
        if isinstance(value, str) and len(value) == 10:
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        self.fail(_join(where, key), f"expected a date like 2026-01-31, got {value!r}")
        return None


def _join(where: str, key: str) -> str:
    return key if where == "$" else f"{where}.{key}"


def _whole(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def digest_key(prefix: str, parts: Mapping[str, object]) -> str:
    """``prefix:`` + 32 hex digits of the canonical JSON of ``parts`` (stable across runs)."""
    canonical = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return f"{prefix}:{hashlib.sha256(canonical.encode()).hexdigest()[:32]}"


def bucket_key(start: datetime, parts: Mapping[str, object]) -> str:
    """The key of one aggregated bucket row: its start (readable) and a digest of the rest."""
    return digest_key(start.strftime("%Y%m%dT%H%M%SZ"), parts)


def midpoint(start: datetime, end: datetime) -> datetime:
    """Where a bucket is booked: its middle, so a daily bucket lands on its own date in
    every org time zone between UTC-12 and UTC+12."""
    return start + (end - start) / 2


def complete(end: datetime, complete_before: datetime | None) -> bool:
    """A bucket still open at ``complete_before`` is left out whole, so that a later import
    picks it up with its final counts (its key would otherwise already be taken)."""
    return complete_before is None or end <= complete_before


def cents(amount: Decimal) -> Money:
    """An amount in cents (Anthropic, Cursor) as exact money."""
    return Money.from_decimal(amount.scaleb(-2))


def merge_same_key(records: Iterable[ImportedUsage]) -> list[ImportedUsage]:
    """Rows of one export that share a key (split by a dimension the key does not know) are
    one aggregate: their tokens, requests and reported costs are added up."""
    merged: dict[str, ImportedUsage] = {}
    for r in records:
        seen = merged.get(r.key)
        if seen is None:
            merged[r.key] = r
            continue
        cost = seen.reported_cost
        if r.reported_cost is not None:
            cost = r.reported_cost if cost is None else cost + r.reported_cost
        merged[r.key] = replace(
            seen,
            usage=seen.usage + r.usage,
            requests=seen.requests + r.requests,
            reported_cost=cost,
        )
    return list(merged.values())
