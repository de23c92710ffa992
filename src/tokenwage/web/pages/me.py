"""``/me`` (my tokens) and ``/people/{id}`` (the same page for someone the viewer may see):
balance, burn-down, usage, recent requests, keys, statements, sharing settings."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from tokenwage.core.errors import InvalidInput, NotFound
from tokenwage.core.periods import local_date
from tokenwage.render.statement import statement_html
from tokenwage.services.dashboard import me
from tokenwage.services.keys import create_key, revoke_key
from tokenwage.services.statements import statement_for
from tokenwage.storage.keys_repo import KeysRepo
from tokenwage.storage.org_repo import OrgRepo
from tokenwage.web import access
from tokenwage.web.auth import Viewer
from tokenwage.web.pages.common import (
    PageViewer,
    chart,
    day_labels,
    money,
    org_timezone,
    requests_text,
    series,
    transaction,
    usd_number,
)
from tokenwage.web.pages.vendor import CHART_JS
from tokenwage.web.templating import render

router = APIRouter(include_in_schema=False)
MONTH = re.compile(r"^(\d{4})-(\d{2})$")
GREY = "#868e96"


def _base(viewer: Viewer, person_id: int) -> str:
    return "/me" if person_id == viewer.person_id else f"/people/{person_id}"


def _charts(page: me.PersonPage) -> dict[str, Any]:
    burn = page.burn
    labels = day_labels(d.day for d in burn.days)
    if page.burn_mode == "balance":
        burn_sets = [
            series("Balance", (d.left_nanousd for d in burn.days), fill=True),
            series("Even pace", (d.pace_nanousd for d in burn.days), dashed=True, color=GREY),
            series("Forecast", (d.forecast_nanousd for d in burn.days), dashed=True),
        ]
    else:
        today = next(d.day for d in burn.days if d.forecast_spent_nanousd is not None)
        burn_sets = [
            series("Credited", (d.credited_nanousd if d.day <= today else None for d in burn.days)),
            series(
                "Still to come",
                (d.credited_nanousd if d.day >= today else None for d in burn.days),
                dashed=True,
                color=GREY,
            ),
            series("Spent", (d.spent_nanousd if d.day <= today else None for d in burn.days)),
            series("Forecast spend", (d.forecast_spent_nanousd for d in burn.days), dashed=True),
        ]
    top = page.by_model[:8]
    return {
        "burn": chart("line", labels, burn_sets),
        "by_day": chart(
            "bar",
            day_labels(d for d, _ in page.by_day),
            [series("Spend", (v for _, v in page.by_day))],
        ),
        "by_model": chart(
            "bar",
            [m for m, _ in top],
            [series("Spend", (t.cost_nanousd for _, t in top))],
            horizontal=True,
        ),
    }


def _render(
    request: Request,
    viewer: Viewer,
    person_id: int,
    *,
    status_code: int = 200,
    new_key: str | None = None,
    notice: str | None = None,
    error: str | None = None,
) -> HTMLResponse:
    now = datetime.now(UTC)
    with transaction(request) as conn:
        access.require_see(conn, viewer, person_id)
        page = me.person_page(conn, person_id, now)
        tz = org_timezone(conn)
        team = page.person.team_slug
        team_name = next((t.name for t in OrgRepo(conn).list_teams() if t.slug == team), team)
    base = _base(viewer, person_id)
    return render(
        request,
        "pages/me.html",
        viewer,
        status_code=status_code,
        page=page,
        tz=tz,
        team_name=team_name,
        is_self=person_id == viewer.person_id,
        can_manage_keys=access.can_manage_keys_of(viewer, person_id),
        base_path=base,
        live_url=f"{base}/live.json",
        charts=_charts(page),
        chart_js_url=CHART_JS,
        base_url=str(request.base_url).rstrip("/"),
        new_key=new_key,
        notice=notice or ("Sharing settings saved." if request.query_params.get("saved") else None),
        error=error,
    )


@router.get("/me", response_class=HTMLResponse)
def my_page(request: Request, viewer: PageViewer) -> Response:
    return _render(request, viewer, viewer.person_id)


@router.get("/people/{person_id}", response_class=HTMLResponse)
def person_page(request: Request, viewer: PageViewer, person_id: int) -> Response:
    if person_id == viewer.person_id:
        return RedirectResponse("/me", status_code=303)
    return _render(request, viewer, person_id)


def _live(request: Request, viewer: Viewer, person_id: int) -> JSONResponse:
    now = datetime.now(UTC)
    with transaction(request) as conn:
        access.require_see(conn, viewer, person_id)
        person = OrgRepo(conn).get_person_by_id(person_id)
        h = me.headline(conn, person, now)
        today = local_date(now, org_timezone(conn))
    return JSONResponse(
        {
            "fields": {
                "balance": money(h.balance),
                "pool": money(h.pool_balance),
                "spendable": money(h.spendable),
                "today": money(h.today.cost),
                "today_sub": requests_text(h.today.requests),
                "month": money(h.month.cost),
            },
            "balance_nanousd": h.balance.nanousd,
            "today": {
                "chart": "by-day",
                "label": today.strftime("%b %d"),
                "value": usd_number(h.today.cost_nanousd),
            },
            "last_request_utc": h.last_request_utc.isoformat() if h.last_request_utc else None,
        },
        headers={"Cache-Control": "no-store"},
    )


@router.get("/me/live.json")
def my_live(request: Request, viewer: PageViewer) -> JSONResponse:
    return _live(request, viewer, viewer.person_id)


@router.get("/people/{person_id}/live.json")
def person_live(request: Request, viewer: PageViewer, person_id: int) -> JSONResponse:
    return _live(request, viewer, person_id)


def _create_key(request: Request, viewer: Viewer, person_id: int, name: str) -> Response:
    if not access.can_manage_keys_of(viewer, person_id):
        raise access.Forbidden("only admins create keys for someone else")
    try:
        with transaction(request) as conn:
            person = OrgRepo(conn).get_person_by_id(person_id)
            _, raw = create_key(conn, email=person.email, name=name, now=datetime.now(UTC))
    except InvalidInput as exc:
        return _render(request, viewer, person_id, status_code=400, error=str(exc))
    return _render(request, viewer, person_id, status_code=201, new_key=raw)


def _revoke_key(request: Request, viewer: Viewer, person_id: int, prefix: str) -> Response:
    if not access.can_manage_keys_of(viewer, person_id):
        raise access.Forbidden("only admins revoke someone else's keys")
    with transaction(request) as conn:
        if KeysRepo(conn).by_prefix(prefix).person_id != person_id:
            raise NotFound(f"no key {prefix!r} here")
        revoke_key(conn, prefix, datetime.now(UTC))
    return RedirectResponse(_base(viewer, person_id), status_code=303)


@router.post("/me/keys", response_class=HTMLResponse)
def my_key(
    request: Request, viewer: PageViewer, name: Annotated[str, Form(max_length=100)]
) -> Response:
    return _create_key(request, viewer, viewer.person_id, name)


@router.post("/people/{person_id}/keys", response_class=HTMLResponse)
def person_key(
    request: Request, viewer: PageViewer, person_id: int, name: Annotated[str, Form(max_length=100)]
) -> Response:
    return _create_key(request, viewer, person_id, name)


@router.post("/me/keys/{prefix}/revoke")
def my_revoke(request: Request, viewer: PageViewer, prefix: str) -> Response:
    return _revoke_key(request, viewer, viewer.person_id, prefix)


@router.post("/people/{person_id}/keys/{prefix}/revoke")
def person_revoke(request: Request, viewer: PageViewer, person_id: int, prefix: str) -> Response:
    return _revoke_key(request, viewer, person_id, prefix)


@router.post("/me/settings")
def my_settings(
    request: Request,
    viewer: PageViewer,
    leaderboard_opt_in: Annotated[str, Form()] = "",
    leaderboard_show_name: Annotated[str, Form()] = "",
    leaderboard_alias: Annotated[str, Form(max_length=100)] = "",
    share_detail: Annotated[str, Form()] = "",
) -> Response:
    chosen = me.SharingSettings(
        leaderboard_opt_in=leaderboard_opt_in == "1",
        leaderboard_alias=leaderboard_alias,
        leaderboard_show_name=leaderboard_show_name == "1",
        share_detail=share_detail == "1",
    )
    try:
        with transaction(request) as conn:
            me.save_sharing_settings(conn, viewer.person_id, chosen, datetime.now(UTC))
    except InvalidInput as exc:
        return _render(request, viewer, viewer.person_id, status_code=400, error=str(exc))
    return RedirectResponse("/me?saved=1", status_code=303)


def _statement(request: Request, viewer: Viewer, person_id: int, month: str) -> HTMLResponse:
    m = MONTH.match(month)
    if m is None:
        raise InvalidInput(f"month {month!r} must be written YYYY-MM")
    with transaction(request) as conn:
        access.require_see(conn, viewer, person_id)
        person = OrgRepo(conn).get_person_by_id(person_id)
        st = statement_for(conn, person.email, int(m[1]), int(m[2]), datetime.now(UTC))
    return HTMLResponse(statement_html(st))


@router.get("/me/statements/{month}", response_class=HTMLResponse)
def my_statement(request: Request, viewer: PageViewer, month: str) -> HTMLResponse:
    return _statement(request, viewer, viewer.person_id, month)


@router.get("/people/{person_id}/statements/{month}", response_class=HTMLResponse)
def person_statement(
    request: Request, viewer: PageViewer, person_id: int, month: str
) -> HTMLResponse:
    return _statement(request, viewer, person_id, month)
