"""``/budgets``: finance reads, admins change allowances, grants and pools in two steps:
``POST /budgets/preview`` shows what will change, ``POST /budgets/apply`` makes the change
and writes the audit entry. Both carry the CSRF token like every form."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tokenwage.core.errors import Conflict, InvalidInput, NotFound
from tokenwage.core.org import Role
from tokenwage.core.package import Period
from tokenwage.services.dashboard import budgets
from tokenwage.web import access
from tokenwage.web.auth import Viewer, require
from tokenwage.web.pages.common import org_timezone, transaction
from tokenwage.web.pages.vendor import CHART_JS
from tokenwage.web.templating import render

router = APIRouter(include_in_schema=False)
BudgetViewer = Annotated[Viewer, Depends(require(Role.FINANCE, Role.ADMIN, page=True))]
AdminViewer = Annotated[Viewer, Depends(require(Role.ADMIN, page=True))]


def _form(
    kind: Annotated[str, Form(max_length=16)] = "",
    target: Annotated[str, Form(max_length=320)] = "",
    to_team: Annotated[str, Form(max_length=1)] = "",
    amount: Annotated[str, Form(max_length=32)] = "",
    period: Annotated[str, Form(max_length=16)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
) -> dict[str, str]:
    return {"kind": kind, "target": target, "to_team": to_team, "amount": amount} | {
        "period": period,
        "reason": reason,
    }


ChangeForm = Annotated[dict[str, str], Depends(_form)]
REFUSED = (InvalidInput, Conflict, NotFound)


def _page(
    request: Request,
    viewer: Viewer,
    *,
    status_code: int = 200,
    error: str | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    with transaction(request) as conn:
        page = budgets.budgets_page(conn, datetime.now(UTC))
        tz = org_timezone(conn)
    return render(
        request,
        "pages/budgets.html",
        viewer,
        status_code=status_code,
        page=page,
        tz=tz,
        can_edit=access.can_manage_budgets(viewer),
        periods=[p.value for p in Period],
        error=error,
        form=form or {},
        done=request.query_params.get("done"),
        chart_js_url=CHART_JS,
    )


@router.get("/budgets", response_class=HTMLResponse)
def budgets_overview(request: Request, viewer: BudgetViewer) -> Response:
    return _page(request, viewer)


@router.post("/budgets/preview", response_class=HTMLResponse)
def budgets_preview(request: Request, viewer: AdminViewer, form: ChangeForm) -> Response:
    try:
        with transaction(request) as conn:
            shown = budgets.preview(conn, budgets.parse_change(form), datetime.now(UTC))
    except REFUSED as exc:
        return _page(request, viewer, status_code=400, error=str(exc), form=form)
    return render(
        request,
        "pages/budgets_confirm.html",
        viewer,
        preview=shown,
        fields=shown.change.fields(),
        chart_js_url=CHART_JS,
    )


@router.post("/budgets/apply")
def budgets_apply(request: Request, viewer: AdminViewer, form: ChangeForm) -> Response:
    try:
        with transaction(request) as conn:
            change = budgets.parse_change(form)
            message = budgets.apply_change(conn, change, viewer.actor, datetime.now(UTC))
    except REFUSED as exc:
        return _page(request, viewer, status_code=400, error=str(exc), form=form)
    return RedirectResponse(f"/budgets?done={quote(message)}", status_code=303)
