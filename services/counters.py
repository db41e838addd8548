"""Number sequences that never skip or repeat: reservations (R-2027-000123), invoices (F-2027-07-00042)."""
from __future__ import annotations

from sqlmodel import Session

from db import upsert_insert
from models import Counter


def next_value(db: Session, name: str) -> int:
    """The next value of counter ``name``, taken inside the caller's transaction.

    An upsert that increments and returns the value: concurrent callers queue on the counter row,
    and a rolled-back transaction gives its number back, so the sequence has no hole.
    """
    return db.execute(increment(db, name).returning(Counter.value)).scalar_one()


def next_values(db: Session, name: str, count: int) -> range:
    """The next ``count`` values of counter ``name`` in one statement (a billing batch's invoice numbers)."""
    last = db.execute(increment(db, name, count).returning(Counter.value)).scalar_one()
    return range(last - count + 1, last + 1)


def increment(db: Session, name: str, by: int = 1):
    """The upsert that moves counter ``name`` ``by`` further (created at ``by``)."""
    stmt = upsert_insert(db)(Counter).values(name=name, value=by)
    return stmt.on_conflict_do_update(index_elements=[Counter.name], set_={"value": Counter.value + by})
