"""What every API router shares: the viewer and database dependencies, the person a path
names (checked against :mod:`tokenwage.web.access` before the body is even read), money
fields, pagination, and the audit trail."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Depends, Path, Query
from pydantic import BaseModel

from tokenwage.core.errors import InvalidInput
from tokenwage.core.money import NANO_PER_USD, Money
from tokenwage.core.org import Person, Role
from tokenwage.storage.db import Database
from tokenwage.storage.org_repo import OrgRepo
from tokenwage.storage.web_repo import WebRepo
from tokenwage.web import access
from tokenwage.web.auth import Viewer, api_viewer, require
from tokenwage.web.context import database
from tokenwage.web.errors import Forbidden

PREFIX = "/api/v1"
MAX_LIMIT = 500

ApiViewer = Annotated[Viewer, Depends(api_viewer)]
Admin = Annotated[Viewer, Depends(require(Role.ADMIN))]
FinanceOrAdmin = Annotated[Viewer, Depends(require(Role.FINANCE, Role.ADMIN))]
Db = Annotated[Database, Depends(database)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page (at most 500).")]
Cursor = Annotated[
    str | None, Query(description="The next_cursor of the previous page; omit for the first.")
]
PersonId = Annotated[int, Path(ge=1, description="The person's id.")]


def now_utc() -> datetime:
    return datetime.now(UTC)


# -- the person in the path ---------------------------------------------------------------
def _person(db: Database, person_id: int) -> Person:
    with db.begin() as conn:
        return OrgRepo(conn).get_person_by_id(person_id)


def _seen_person(person_id: PersonId, viewer: ApiViewer, db: Db) -> Person:
    with db.begin() as conn:
        access.require_see(conn, viewer, person_id)
        return OrgRepo(conn).get_person_by_id(person_id)


def _paid_person(person_id: PersonId, viewer: ApiViewer, db: Db) -> Person:
    if not access.can_see_compensation(viewer, person_id):
        raise Forbidden("a person's package is visible to them, finance and admins only")
    return _person(db, person_id)


def _keyed_person(person_id: PersonId, viewer: ApiViewer, db: Db) -> Person:
    if not access.can_manage_keys_of(viewer, person_id):
        raise Forbidden("virtual keys are visible to their owner and admins only")
    return _person(db, person_id)


SeenPerson = Annotated[Person, Depends(_seen_person)]
"""The person in the path, if the viewer may see their usage, balance and statements."""
PaidPerson = Annotated[Person, Depends(_paid_person)]
"""The person in the path, if the viewer may see their compensation."""
KeyedPerson = Annotated[Person, Depends(_keyed_person)]
"""The person in the path, if the viewer may list and change their virtual keys."""


# -- money ----------------------------------------------------------------------------------
def usd_text(nanousd: int) -> str:
    """The exact amount in dollars as a decimal string with at least cents: ``"1.50"``."""
    sign = "-" if nanousd < 0 else ""
    whole, frac = divmod(abs(nanousd), NANO_PER_USD)
    digits = f"{frac:09d}".rstrip("0")
    return f"{sign}{whole}.{digits.ljust(2, '0')}"


def money(name: str, value: Money | int | None) -> dict[str, Any]:
    """``{name}_nanousd`` (int) and ``{name}_usd`` (decimal string); both None for None."""
    if value is None:
        return {f"{name}_nanousd": None, f"{name}_usd": None}
    nano = value.nanousd if isinstance(value, Money) else int(value)
    return {f"{name}_nanousd": nano, f"{name}_usd": usd_text(nano)}


def parse_usd(text: str, what: str) -> Money:
    """An amount given as a decimal string in dollars (``"12.50"``); never a float."""
    try:
        return Money.parse(text)
    except (ValueError, InvalidInput) as exc:
        raise InvalidInput(f"{what} {text!r}: {exc}") from None


# -- pagination -----------------------------------------------------------------------------
T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(after: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(after))).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> list[Any] | None:
    if cursor is None:
        return None
    try:
        value = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        value = None
    if not isinstance(value, list):
        raise InvalidInput("cursor is not one this API gave out; pass next_cursor back as it is")
    return value


def paged(
    items: Sequence[T], key: Callable[[T], Sequence[Any]], limit: int, cursor: str | None
) -> tuple[list[T], str | None]:
    """One page of ``items`` in ascending ``key`` order, after the cursor's key."""
    after = decode_cursor(cursor)
    ordered = sorted(items, key=lambda item: list(key(item)))
    if after is not None:
        ordered = [item for item in ordered if list(key(item)) > after]
    page = ordered[:limit]
    more = len(ordered) > limit
    return page, encode_cursor(key(page[-1])) if more and page else None


# -- audit ----------------------------------------------------------------------------------
def audit(conn: Any, viewer: Viewer, action: str, detail: dict[str, Any]) -> None:
    WebRepo(conn).audit(viewer.actor, action, detail, now_utc())
