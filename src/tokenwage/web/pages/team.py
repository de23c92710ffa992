"""``/team``: a manager's reports (everyone below them), or any team for finance and admin."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import Connection

from tokenwage.core.errors import NotFound
from tokenwage.core.org import Person, Role
from tokenwage.core.periods import local_date
from tokenwage.services.dashboard.team import team_page
from tokenwage.services.dashboard.usage import month_to_date
from tokenwage.storage.org_repo import OrgRepo
from tokenwage.web import access
from tokenwage.web.auth import Viewer, require
from tokenwage.web.pages.common import (
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
TeamViewer = Annotated[Viewer, Depends(require(Role.MANAGER, Role.FINANCE, Role.ADMIN, page=True))]
TeamParam = Annotated[str | None, Query(max_length=63)]


def members_for(conn: Connection, viewer: Viewer, team: str | None) -> tuple[str, list[Person]]:
    """Who the page covers: a manager's reports, or the chosen (else first) team."""
    repo = OrgRepo(conn)
    if viewer.role is Role.MANAGER:
        if team:
            raise access.Forbidden("managers see their own reports; finance and admins pick teams")
        ids = access.reports_of(conn, viewer.person_id)
        return "My reports", [p for p in repo.list_people() if p.id in ids]
    teams = repo.list_teams()
    if not teams:
        return "No teams yet", []
    slug = team or teams[0].slug
    name = next((t.name for t in teams if t.slug == slug), None)
    if name is None:
        raise NotFound(f"no team {slug!r}")
    return name, repo.list_people(slug)


@router.get("/team", response_class=HTMLResponse)
def team(request: Request, viewer: TeamViewer, team: TeamParam = None) -> Response:
    now = datetime.now(UTC)
    with transaction(request) as conn:
        label, members = members_for(conn, viewer, team)
        page = team_page(conn, label, members, now)
        tz = org_timezone(conn)
        teams = OrgRepo(conn).list_teams() if viewer.role is not Role.MANAGER else []
    top = page.top_models[:8]
    charts = {
        "by_day": chart(
            "bar",
            day_labels(d for d, _ in page.by_day),
            [series("Spend", (v for _, v in page.by_day))],
        ),
        "models": chart(
            "bar",
            [m for m, _ in top],
            [series("Spend", (t.cost_nanousd for _, t in top))],
            horizontal=True,
        ),
    }
    query = f"?team={team}" if team else ""
    return render(
        request,
        "pages/team.html",
        viewer,
        page=page,
        tz=tz,
        teams=teams,
        chosen=team or (teams[0].slug if teams else None),
        charts=charts,
        chart_js_url=CHART_JS,
        live_url=f"/team/live.json{query}",
    )


@router.get("/team/live.json")
def team_live(request: Request, viewer: TeamViewer, team: TeamParam = None) -> JSONResponse:
    now = datetime.now(UTC)
    with transaction(request) as conn:
        _, members = members_for(conn, viewer, team)
        today = local_date(now, org_timezone(conn))
        month, day = month_to_date(conn, today, [p.id for p in members if p.id is not None])
    return JSONResponse(
        {
            "fields": {
                "month": money(month.cost),
                "month_sub": requests_text(month.requests),
                "today": money(day.cost),
                "today_sub": requests_text(day.requests),
            },
            "today": {
                "chart": "by-day",
                "label": today.strftime("%b %d"),
                "value": usd_number(day.cost_nanousd),
            },
        },
        headers={"Cache-Control": "no-store"},
    )
