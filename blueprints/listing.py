"""Searchable, paginated lists of the back office: the search text and page from the address, one page of rows."""
from __future__ import annotations

from dataclasses import dataclass, field

from flask import abort, request
from sqlalchemy import func, or_
from sqlmodel import Session, select

from models import Child, ChildHousehold, Family, Guardian, User


@dataclass
class Page:
    rows: list = field(default_factory=list)
    total: int = 0
    number: int = 1
    pages: int = 1


def search_text() -> str:
    """What was typed in the list's search field (``q``), trimmed and bounded."""
    return (request.args.get("q") or "").strip()[:100]


def matches(text: str, *columns):
    """Rows where any of ``columns`` contains ``text``, whatever the case."""
    like = f"%{text.lower()}%"
    return or_(*(func.lower(column).like(like) for column in columns))


def family_matches(text: str, children: bool = True):
    """Families whose name, a login, a guardian's name or (``children``) a child's, shared custody
    included, contains ``text``: the staff's family search."""
    found = [
        matches(text, Family.name),
        Family.id.in_(select(User.family_id).where(matches(text, User.email))),
        Family.id.in_(select(Guardian.family_id).where(matches(text, Guardian.first_name, Guardian.last_name))),
    ]
    if children:
        found += [
            Family.id.in_(select(Child.family_id).where(matches(text, Child.first_name, Child.last_name))),
            Family.id.in_(select(ChildHousehold.family_id).join(Child, Child.id == ChildHousehold.child_id)
                          .where(matches(text, Child.first_name, Child.last_name))),
        ]
    return or_(*found)


def paginate(db: Session, query, *order_by, size: int = 20) -> Page:
    """The page asked for (``page`` in the address) of ``query`` in that order, with the total count."""
    number = max(request.args.get("page", 1, type=int), 1)
    total = db.exec(select(func.count()).select_from(query.subquery())).one()
    pages = max((total + size - 1) // size, 1)
    if number > pages:
        abort(404)  # past the last page: "Page introuvable", not an empty list that looks like no data
    rows = db.exec(query.order_by(*order_by).offset((number - 1) * size).limit(size)).all()
    return Page(list(rows), total, number, pages)
