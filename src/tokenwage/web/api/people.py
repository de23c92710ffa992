"""People and teams: ``/api/v1/people``, ``/api/v1/teams``. Everyone lists whom they may
see; admins create and change."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from tokenwage.core.errors import InvalidInput
from tokenwage.core.org import Person, Role, Team
from tokenwage.services import people as service
from tokenwage.storage.org_repo import OrgRepo
from tokenwage.web import access
from tokenwage.web.api.common import (
    PREFIX,
    Admin,
    ApiViewer,
    Cursor,
    Db,
    Limit,
    Page,
    SeenPerson,
    audit,
    paged,
)

router = APIRouter(prefix=PREFIX, tags=["people and teams"])


class PersonOut(BaseModel):
    id: int
    email: str
    name: str
    team: str | None
    manager_email: str | None
    level: str | None
    role: Role
    start_date: date | None
    end_date: date | None

    @classmethod
    def of(cls, p: Person) -> PersonOut:
        assert p.id is not None
        return cls(
            id=p.id,
            email=p.email,
            name=p.name,
            team=p.team_slug,
            manager_email=p.manager_email,
            level=p.level,
            role=p.role,
            start_date=p.start_date,
            end_date=p.end_date,
        )


class PersonIn(BaseModel):
    email: str = Field(max_length=320)
    name: str = Field(min_length=1, max_length=200)
    team: str | None = None
    manager_email: str | None = None
    level: str | None = Field(default=None, max_length=64)
    role: Role = Role.MEMBER
    start_date: date | None = None
    end_date: date | None = None


class PersonPatch(BaseModel):
    """Only the fields sent change; send ``null`` to clear team, manager, level or dates."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    team: str | None = None
    manager_email: str | None = None
    level: str | None = Field(default=None, max_length=64)
    role: Role | None = None
    start_date: date | None = None
    end_date: date | None = None


class TeamOut(BaseModel):
    slug: str
    name: str
    parent: str | None


class TeamIn(BaseModel):
    slug: str = Field(max_length=63)
    name: str = Field(min_length=1, max_length=200)
    parent: str | None = None


@router.get("/people", response_model=Page[PersonOut])
def list_people(
    viewer: ApiViewer,
    db: Db,
    email: Annotated[str | None, Query(description="Only this email.")] = None,
    team: Annotated[str | None, Query(description="Only this team's slug.")] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[PersonOut]:
    """The people the caller may see (members: themself and those who share their detail;
    managers: also their reports; finance and admins: everyone)."""
    with db.begin() as conn:
        everyone = OrgRepo(conn).list_people(team)
        visible = access.visible_people(conn, viewer)
    chosen = [
        PersonOut.of(p)
        for p in everyone
        if (visible is None or p.id in visible) and (email is None or p.email == email.lower())
    ]
    items, next_cursor = paged(chosen, lambda p: (p.id,), limit, cursor)
    return Page[PersonOut](items=items, next_cursor=next_cursor)


@router.get("/people/{person_id}", response_model=PersonOut)
def get_person(person: SeenPerson) -> PersonOut:
    return PersonOut.of(person)


@router.post("/people", response_model=PersonOut, status_code=201)
def create_person(body: PersonIn, viewer: Admin, db: Db) -> PersonOut:
    """Add a person (admin)."""
    person = Person(
        email=body.email,
        name=body.name,
        team_slug=body.team,
        manager_email=body.manager_email,
        level=body.level,
        role=body.role,
        start_date=body.start_date,
        end_date=body.end_date,
    )
    with db.begin() as conn:
        service.add_person(conn, person)
        audit(conn, viewer, "person.create", {"person": person.email, "role": str(person.role)})
        return PersonOut.of(OrgRepo(conn).get_person(person.email))


@router.patch("/people/{person_id}", response_model=PersonOut)
def update_person(person_id: int, body: PersonPatch, viewer: Admin, db: Db) -> PersonOut:
    """Change a person's name, team, manager, level, role or dates (admin)."""
    names = {"team": "team_slug"}
    changes = {names.get(k, k): v for k, v in body.model_dump(exclude_unset=True).items()}
    for required in ("name", "role"):
        if required in changes and changes[required] is None:
            raise InvalidInput(f"{required} cannot be null; leave it out to keep it")
    with db.begin() as conn:
        email = OrgRepo(conn).get_person_by_id(person_id).email
        updated = service.update_person(conn, email, changes)
        shown = {k: str(v) if v is not None else None for k, v in changes.items()}
        audit(conn, viewer, "person.update", {"person": email, "changes": shown})
    return PersonOut.of(updated)


@router.get("/teams", response_model=list[TeamOut])
def list_teams(viewer: ApiViewer, db: Db) -> list[TeamOut]:
    """Every team (the organisation chart is not secret)."""
    with db.begin() as conn:
        teams = OrgRepo(conn).list_teams()
    return [TeamOut(slug=t.slug, name=t.name, parent=t.parent_slug) for t in teams]


@router.post("/teams", response_model=TeamOut, status_code=201)
def create_team(body: TeamIn, viewer: Admin, db: Db) -> TeamOut:
    """Add a team (admin)."""
    team = Team(body.slug, body.name, body.parent)
    with db.begin() as conn:
        service.add_team(conn, team)
        audit(conn, viewer, "team.create", {"team": team.slug})
    return TeamOut(slug=team.slug, name=team.name, parent=team.parent_slug)
