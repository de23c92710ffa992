"""Statements and ledger verification: ``/api/v1/people/{id}/statements/{month}`` (JSON or
the printable HTML page) and ``/api/v1/ledger/verify`` (finance, admin)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse, Response

from tokenwage.core.errors import InvalidInput
from tokenwage.render.statement import statement_html, statement_json
from tokenwage.services.statements import statement_for
from tokenwage.storage.ledger_repo import LedgerRepo
from tokenwage.web.api.common import PREFIX, Db, FinanceOrAdmin, SeenPerson, now_utc

router = APIRouter(prefix=PREFIX, tags=["statements and ledger"])
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def parse_month(text: str) -> tuple[int, int]:
    m = _MONTH.match(text)
    if m is None or not 1 <= int(m.group(2)) <= 12:
        raise InvalidInput(f"month {text!r} must look like 2026-11")
    return int(m.group(1)), int(m.group(2))


@router.get(
    "/people/{person_id}/statements/{month}",
    responses={200: {"content": {"application/json": {}, "text/html": {}}}},
)
def get_statement(
    person: SeenPerson,
    db: Db,
    month: Annotated[str, Path(description="YYYY-MM")],
    format: Annotated[Literal["json", "html"], Query(description="json or html")] = "json",
) -> Response:
    """The monthly token statement, sealed by the ledger's hash chain."""
    year, mon = parse_month(month)
    with db.begin() as conn:
        st = statement_for(conn, person.email, year, mon, now_utc())
    if format == "html":
        return HTMLResponse(statement_html(st))
    return JSONResponse(jsonable_encoder(statement_json(st)))


@router.get("/ledger/verify")
def verify_ledger(viewer: FinanceOrAdmin, db: Db) -> dict[str, Any]:
    """Walk every hash chain; ``ok`` is false and ``problems`` name the bad entries, first
    first, if any row was edited, deleted, inserted or moved behind the application's back."""
    with db.begin() as conn:
        repo = LedgerRepo(conn)
        problems = list(repo.verify())
        count = repo.count_entries()
        n_accounts = len(repo.all_accounts())
    return {
        "ok": not problems,
        "entries": count,
        "accounts": n_accounts,
        "problems": [
            {"account": p.account, "entry_id": p.entry_id, "seq": p.seq, "what": p.what}
            for p in problems[:100]
        ],
    }
