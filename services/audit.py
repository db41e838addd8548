"""The record of every change made by staff (who, when, what, before and after)."""
from __future__ import annotations

from datetime import date, time

from sqlmodel import Session, select

from models import AuditEntry, User


def snapshot(obj, fields) -> dict:
    """The given fields of ``obj`` as plain JSON values."""
    values = {}
    for name in fields:
        value = getattr(obj, name)
        values[name] = value.isoformat() if isinstance(value, (date, time)) else value
    return values


def record(db: Session, user_id: int, action: str, target: str, target_id: int, summary: str,
           before: dict | None = None, after: dict | None = None, family_id: int | None = None) -> None:
    """Add an entry; the caller commits it with the change itself."""
    db.add(AuditEntry(user_id=user_id, action=action, target=target, target_id=target_id, summary=summary[:300],
                      before=before or {}, after=after or {}, family_id=family_id))


def authors(db: Session, entries) -> dict[int, User]:
    """The staff who made ``entries``, by id (to show who changed what)."""
    return {u.id: u for u in db.exec(select(User).where(User.id.in_({e.user_id for e in entries})))}
