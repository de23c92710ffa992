"""``/account``: the signed-in person's password and their API tokens."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tokenwage.core.errors import InvalidInput, NotFound
from tokenwage.storage.web_repo import WebRepo
from tokenwage.web import accounts, passwords
from tokenwage.web.auth import Viewer, page_viewer
from tokenwage.web.context import web_context
from tokenwage.web.login import start_session
from tokenwage.web.templating import render

router = APIRouter(include_in_schema=False)
PageViewer = Annotated[Viewer, Depends(page_viewer)]


def _page(
    request: Request,
    viewer: Viewer,
    *,
    status_code: int = 200,
    error: str | None = None,
    notice: str | None = None,
    new_token: str | None = None,
) -> HTMLResponse:
    with web_context(request).db.begin() as conn:
        tokens = accounts.list_api_tokens(conn, viewer.email)
    return render(
        request,
        "account.html",
        viewer,
        status_code=status_code,
        tokens=tokens,
        now=datetime.now(UTC),
        error=error,
        notice=notice,
        new_token=new_token,
    )


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request, viewer: PageViewer) -> Response:
    return _page(request, viewer)


@router.post("/account/password")
def change_password(
    request: Request,
    viewer: PageViewer,
    current_password: Annotated[str, Form(max_length=passwords.MAX_LENGTH)],
    new_password: Annotated[str, Form(max_length=passwords.MAX_LENGTH)],
    confirm_password: Annotated[str, Form(max_length=passwords.MAX_LENGTH)],
) -> Response:
    """Check the current password, set the new one, end every other session."""
    ctx = web_context(request)
    now = datetime.now(UTC)
    if new_password != confirm_password:
        return _page(request, viewer, status_code=400, error="The new passwords differ.")
    with ctx.db.begin() as conn:
        current_ok = (
            accounts.authenticate(conn, viewer.email, current_password, now, ctx.settings)
            is not None
        )
    if not current_ok:
        return _page(request, viewer, status_code=400, error="The current password is wrong.")
    try:
        with ctx.db.begin() as conn:
            account = accounts.set_password(
                conn, viewer.email, new_password, actor=viewer.actor, now=now, settings=ctx.settings
            )
    except InvalidInput as exc:
        return _page(request, viewer, status_code=400, error=str(exc))
    return start_session(request, ctx, account, "/account?changed=1")


@router.post("/account/api-tokens", response_class=HTMLResponse)
def create_token(
    request: Request,
    viewer: PageViewer,
    name: Annotated[str, Form(max_length=100)],
    expires_days: Annotated[int | None, Form(ge=1, le=accounts.MAX_TOKEN_DAYS)] = None,
) -> Response:
    with web_context(request).db.begin() as conn:
        _info, raw = accounts.create_api_token(
            conn, viewer.email, name, actor=viewer.actor, now=datetime.now(UTC),
            expires_days=expires_days,
        )  # fmt: skip
    notice = "Copy the token now: it is shown only once."
    return _page(request, viewer, status_code=201, notice=notice, new_token=raw)


@router.post("/account/api-tokens/{prefix}/revoke")
def revoke_token(request: Request, viewer: PageViewer, prefix: str) -> Response:
    with web_context(request).db.begin() as conn:
        info = WebRepo(conn).api_token_by_prefix(prefix)
        if info.person_id != viewer.person_id:
            raise NotFound(f"you have no API token {prefix!r}")
        accounts.revoke_api_token(conn, prefix, actor=viewer.actor, now=datetime.now(UTC))
    return RedirectResponse("/account", status_code=303)
