"""Who may see and change what: the one place every page and endpoint asks.

========  ==========================================================================
role      sees
========  ==========================================================================
member    themself, and people who chose to share their detail (``share_detail``)
manager   as member, plus everyone who reports to them, directly or indirectly
finance   everyone's money and usage (never prompt content: tokenwage stores none)
admin     everyone, and may change people, packages, grants, keys and budgets
========  ==========================================================================

Compensation (salary, bonus, equity) is narrower: a person sees their own, finance and
admin see everyone's; managers see their reports' tokens, not their pay.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from tokenwage.core.org import Role
from tokenwage.storage.schema import people, person_settings
from tokenwage.web.auth import Viewer
from tokenwage.web.errors import Forbidden

__all__ = [
    "Forbidden",
    "NavItem",
    "can_edit_people",
    "can_manage_budgets",
    "can_manage_keys_of",
    "can_read_budgets",
    "can_see",
    "can_see_compensation",
    "can_see_org",
    "can_verify_ledger",
    "nav_items",
    "require_see",
    "reports_of",
    "visible_people",
]

EVERYONE_ROLES = frozenset({Role.FINANCE, Role.ADMIN})


def reports_of(conn: Connection, manager_id: int) -> set[int]:
    """Everyone below ``manager_id`` in the management chain (not the manager)."""
    found: set[int] = set()
    frontier = {manager_id}
    while frontier:
        rows = conn.execute(select(people.c.id).where(people.c.manager_id.in_(frontier)))
        frontier = {int(r.id) for r in rows} - found - {manager_id}
        found |= frontier
    return found


def sharers(conn: Connection) -> set[int]:
    """People who chose to let colleagues see their detail."""
    q = select(person_settings.c.person_id).where(person_settings.c.share_detail != 0)
    return {int(r.person_id) for r in conn.execute(q)}


def visible_people(conn: Connection, viewer: Viewer) -> set[int] | None:
    """The people ``viewer`` may see; ``None`` means everyone."""
    if viewer.role in EVERYONE_ROLES:
        return None
    seen = {viewer.person_id} | sharers(conn)
    if viewer.role == Role.MANAGER:
        seen |= reports_of(conn, viewer.person_id)
    return seen


def can_see(conn: Connection, viewer: Viewer, person_id: int) -> bool:
    if viewer.role in EVERYONE_ROLES or person_id == viewer.person_id:
        return True
    visible = visible_people(conn, viewer)
    return visible is None or person_id in visible


def require_see(conn: Connection, viewer: Viewer, person_id: int) -> None:
    """Raise :class:`Forbidden` unless ``viewer`` may see ``person_id`` (existing or not)."""
    if not can_see(conn, viewer, person_id):
        raise Forbidden(
            f"you may not see person {person_id}'s data: members see their own, "
            "managers their reports', finance and admins everyone's"
        )


def can_see_compensation(viewer: Viewer, person_id: int) -> bool:
    return viewer.role in EVERYONE_ROLES or person_id == viewer.person_id


def can_see_org(viewer: Viewer) -> bool:
    """Organisation-wide totals: spend by team, committed allowances, fully loaded cost."""
    return viewer.role in EVERYONE_ROLES


def can_read_budgets(viewer: Viewer) -> bool:
    return viewer.role in EVERYONE_ROLES


def can_manage_budgets(viewer: Viewer) -> bool:
    """Packages, allowances, grants and pools."""
    return viewer.role == Role.ADMIN


def can_edit_people(viewer: Viewer) -> bool:
    return viewer.role == Role.ADMIN


def can_verify_ledger(viewer: Viewer) -> bool:
    return viewer.role in EVERYONE_ROLES


def can_manage_keys_of(viewer: Viewer, person_id: int) -> bool:
    """Create and revoke virtual keys: one's own, or anyone's as admin."""
    return viewer.role == Role.ADMIN or person_id == viewer.person_id


@dataclass(frozen=True)
class NavItem:
    label: str
    href: str


_NAV: tuple[tuple[str, str, frozenset[Role]], ...] = (
    ("My tokens", "/me", frozenset(Role)),
    ("Team", "/team", frozenset({Role.MANAGER, Role.ADMIN})),
    ("Organisation", "/org", EVERYONE_ROLES),
    ("Leaderboard", "/leaderboard", frozenset(Role)),
    ("Budgets", "/budgets", EVERYONE_ROLES),  # finance reads, admin edits
    ("Ledger", "/ledger", EVERYONE_ROLES),
)


def nav_items(viewer: Viewer) -> list[NavItem]:
    return [NavItem(label, href) for label, href, roles in _NAV if viewer.role in roles]
