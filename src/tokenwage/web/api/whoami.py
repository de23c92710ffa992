"""``GET /api/v1/me``: who the credentials belong to and what they may do."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from tokenwage.web import access
from tokenwage.web.auth import Viewer, api_viewer

router = APIRouter(prefix="/api/v1", tags=["me"])


class Me(BaseModel):
    person_id: int
    email: str
    name: str
    role: str
    authenticated_by: str
    can_see_org: bool
    can_manage_budgets: bool
    can_verify_ledger: bool


@router.get("/me", response_model=Me)
def me(viewer: Annotated[Viewer, Depends(api_viewer)]) -> Me:
    """The signed-in person, their role and what it allows."""
    return Me(
        person_id=viewer.person_id,
        email=viewer.email,
        name=viewer.name,
        role=viewer.role.value,
        authenticated_by="session" if viewer.csrf_token is not None else "api_token",
        can_see_org=access.can_see_org(viewer),
        can_manage_budgets=access.can_manage_budgets(viewer),
        can_verify_ledger=access.can_verify_ledger(viewer),
    )
