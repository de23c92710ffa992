"""``/org`` (finance, admin): spend by team, model and day, committed versus actual, fully
loaded cost per team and person, and an offer comparison (a GET form: it changes nothing)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import Connection

from tokenwage.core.errors import InvalidInput
from tokenwage.core.org import Role
from tokenwage.core.periods import local_date
from tokenwage.services.dashboard import org
from tokenwage.services.dashboard.usage import month_to_date
from tokenwage.web.auth import Viewer, require
from tokenwage.web.pages.common import (
    chart,
    day_labels,
    money,
    org_timezone,
    requests_text,
    series,
    transaction,
)
from tokenwage.web.pages.vendor import CHART_JS
from tokenwage.web.templating import render

router = APIRouter(include_in_schema=False)
OrgViewer = Annotated[Viewer, Depends(require(Role.FINANCE, Role.ADMIN, page=True))]


def _charts(page: org.OrgPage) -> dict[str, object]:
    names = {t.slug: t.name for t in page.teams}
    slugs = sorted({slug for _, per in page.by_day for slug in per})
    labels = day_labels(d for d, _ in page.by_day)
    by_day = [
        series(names.get(s, org.NO_TEAM), (per.get(s, 0) for _, per in page.by_day), stack="t")
        for s in slugs
    ]
    teams = [t for t in page.teams if t.people]
    top = page.by_model[:8]
    return {
        "by_day": chart("bar", labels, by_day, stacked=True),
        "committed": chart(
            "bar",
            [t.name for t in teams],
            [
                series(
                    "Allowance committed", (t.committed.nanousd for t in teams), color="#adb5bd"
                ),
                series("Spent", (t.usage.cost_nanousd for t in teams)),
            ],
        ),
        "models": chart(
            "bar",
            [m for m, _ in top],
            [series("Spend", (t.cost_nanousd for _, t in top))],
            horizontal=True,
        ),
    }


@router.get("/org", response_class=HTMLResponse)
def org_overview(
    request: Request,
    viewer: OrgViewer,
    range_name: Annotated[str, Query(alias="range", max_length=16)] = "month",
) -> Response:
    now = datetime.now(UTC)
    fields = {
        k: v for k, v in request.query_params.items() if k.startswith("o") or k == "utilisation"
    }
    form = org.offer_form(fields) if fields else org.default_offers()
    offer_error = None
    with transaction(request) as conn:
        page = org.org_page(conn, range_name, now)
        today = local_date(now, org_timezone(conn))
        live = _live_fields(conn, today)
    try:
        offers = org.compare(form, today)
    except InvalidInput as exc:
        offers, offer_error = [], str(exc)
    return render(
        request,
        "pages/org.html",
        viewer,
        page=page,
        ranges=org.RANGES,
        charts=_charts(page),
        chart_js_url=CHART_JS,
        form=form,
        offers=offers,
        offer_error=offer_error,
        live_url="/org/live.json",
        live=live,
    )


def _live_fields(conn: Connection, today: date) -> dict[str, str]:
    month, day = month_to_date(conn, today)
    return {
        "today": money(day.cost),
        "today_sub": requests_text(day.requests),
        "month": money(month.cost),
        "month_sub": requests_text(month.requests),
    }


@router.get("/org/live.json")
def org_live(request: Request, viewer: OrgViewer) -> JSONResponse:
    with transaction(request) as conn:
        fields = _live_fields(conn, local_date(datetime.now(UTC), org_timezone(conn)))
    return JSONResponse({"fields": fields}, headers={"Cache-Control": "no-store"})
