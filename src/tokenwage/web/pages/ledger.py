"""``/ledger`` (finance, admin): every hash chain's head and last verification, and the
monthly seals. ``POST /ledger/verify`` walks every chain now and records the outcome."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tokenwage.core.org import Role
from tokenwage.services.dashboard import ledger
from tokenwage.web.auth import Viewer, require
from tokenwage.web.pages.common import org_timezone, transaction
from tokenwage.web.pages.vendor import CHART_JS
from tokenwage.web.templating import render

router = APIRouter(include_in_schema=False)
LedgerViewer = Annotated[Viewer, Depends(require(Role.FINANCE, Role.ADMIN, page=True))]


@router.get("/ledger", response_class=HTMLResponse)
def ledger_overview(request: Request, viewer: LedgerViewer) -> Response:
    with transaction(request) as conn:
        tz = org_timezone(conn)
        page = ledger.ledger_page(conn, datetime.now(UTC), tz)
    return render(request, "pages/ledger.html", viewer, page=page, tz=tz, chart_js_url=CHART_JS)


@router.post("/ledger/verify")
def ledger_verify(request: Request, viewer: LedgerViewer) -> Response:
    with transaction(request) as conn:
        ledger.verify_ledger(conn, viewer.actor, datetime.now(UTC))
    return RedirectResponse("/ledger#verification", status_code=303)
