"""Persistence for importers: how far each file was read (cursors), and identities.

A cursor remembers, per ``(source, location)``, the byte ``position`` up to which a file was
consumed, and the file's ``size``, ``mtime_ns`` and a ``fingerprint`` (SHA-256 of its first
bytes) at that time, so the next run can tell an appended file (read on from ``position``)
from a replaced or truncated one (read again from 0). See ``tokenwage.importers.files``.

Identities map what a log or export knows about a user (an account id, a hostname, a
provider user id ...) to a person; ``services.importing.Attributor`` reads them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, bindparam, insert, select, update

from tokenwage.core.errors import Conflict, InvalidInput
from tokenwage.core.imported import Identity, IdentityKind
from tokenwage.storage.schema import identities, import_cursors, people

MAX_LOCATION_CHARS = 1000  # import_cursors.location


@dataclass(frozen=True, slots=True)
class Cursor:
    """How far one file was read: everything before ``position`` has been booked."""

    location: str
    position: int
    size: int
    mtime_ns: int
    fingerprint: str


@dataclass(frozen=True, slots=True)
class MappedIdentity:
    kind: str
    value: str
    email: str


class ImportsRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # -- cursors --------------------------------------------------------------------------
    def cursors(self, source: str) -> dict[str, Cursor]:
        """Every cursor of ``source``, by location."""
        q = select(import_cursors).where(import_cursors.c.source == source)
        return {
            r.location: Cursor(r.location, r.position, r.size or 0, r.mtime_ns or 0, r.fingerprint)
            for r in self.conn.execute(q)
        }

    def save_cursors(self, source: str, cursors: Iterable[Cursor], now: datetime) -> int:
        """Insert or move the cursors; returns how many were written."""
        wanted = {c.location: c for c in cursors}
        if not wanted:
            return 0
        too_long = [loc for loc in wanted if len(loc) > MAX_LOCATION_CHARS]
        if too_long:
            raise InvalidInput(
                f"file path longer than {MAX_LOCATION_CHARS} characters: {too_long[0][:80]}...; "
                "move the logs to a shorter path"
            )
        known = set(self.cursors(source))
        fresh = [
            _cursor_row(c, now) | {"source": source, "location": c.location}
            for c in wanted.values()
            if c.location not in known
        ]
        moved = [
            {f"b_{k}": v for k, v in _cursor_row(c, now).items()}
            | {"b_source": source, "b_location": c.location}
            for c in wanted.values()
            if c.location in known
        ]
        if fresh:
            self.conn.execute(insert(import_cursors), fresh)
        if moved:
            stmt = (
                update(import_cursors)
                .where(
                    and_(
                        import_cursors.c.source == bindparam("b_source"),
                        import_cursors.c.location == bindparam("b_location"),
                    )
                )
                .values(
                    position=bindparam("b_position"),
                    size=bindparam("b_size"),
                    mtime_ns=bindparam("b_mtime_ns"),
                    fingerprint=bindparam("b_fingerprint"),
                    updated_utc=bindparam("b_updated_utc"),
                )
            )
            self.conn.execute(stmt, moved)
        return len(wanted)

    # -- identities -----------------------------------------------------------------------
    def add_identity(self, identity: Identity, person_id: int, now: datetime) -> Identity:
        """Map ``identity`` (normalised: trimmed, lower case) to a person."""
        n = identity.normalised()
        if not n.value:
            raise InvalidInput(f"an empty {n.kind} identity cannot be mapped")
        if len(n.value) > 320:
            raise InvalidInput(f"identity value is {len(n.value)} characters; at most 320")
        q = (
            select(people.c.email)
            .join(identities, identities.c.person_id == people.c.id)
            .where(identities.c.kind == n.kind.value, identities.c.value == n.value)
        )
        owner = self.conn.execute(q).scalar()
        if owner is not None:
            raise Conflict(
                f"{n.kind} {n.value!r} is already mapped to {owner}; "
                "an identity belongs to one person"
            )
        self.conn.execute(
            insert(identities).values(
                kind=n.kind.value, value=n.value, person_id=person_id, created_utc=now
            )
        )
        return n

    def list_identities(self, kind: IdentityKind | None = None) -> list[MappedIdentity]:
        q = (
            select(identities.c.kind, identities.c.value, people.c.email)
            .join(people, people.c.id == identities.c.person_id)
            .order_by(identities.c.kind, identities.c.value)
        )
        if kind is not None:
            q = q.where(identities.c.kind == kind.value)
        return [MappedIdentity(r.kind, r.value, r.email) for r in self.conn.execute(q)]


def _cursor_row(c: Cursor, now: datetime) -> dict[str, object]:
    return {
        "position": c.position,
        "size": c.size,
        "mtime_ns": c.mtime_ns,
        "fingerprint": c.fingerprint,
        "updated_utc": now,
    }
