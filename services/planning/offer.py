"""What a period offers: its rules, its units and their weekdays, the units that exclude each other, its
closed days.

It almost never changes, and every planning page and every click needs it: each process keeps it in
memory, keyed by the configuration's version. Any change of a period, a unit, an exclusion or a closed
day, by whatever code, bumps the version in the same transaction (a flush listener, below); a request
reads the version in one cheap query and reloads the offer only when it moved. Several app servers
stay right without telling each other anything.
"""
from __future__ import annotations

import threading
import weakref
from collections import defaultdict
from dataclasses import dataclass, make_dataclass
from datetime import date

from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, select

from models import ClosedDay, Counter, Period, PeriodUnit, Unit, UnitExclusion
from services.counters import increment

VERSION = "configuration"
CONFIGURATION = (Period, PeriodUnit, Unit, UnitExclusion, ClosedDay)


@dataclass(frozen=True, slots=True)
class OfferedUnit:
    """A unit as the planning shows it (a copy: shared by the requests of a process, never written)."""

    id: int
    establishment_id: int
    code: str
    label: str
    short: str  # what fits its column at 320 px (Unit.short)
    position: int
    capacity: int


# The period as the rules read it (its dates, deadlines and thresholds): a copy with Period's columns,
# kept with the offer, so that a click need not load the period at all.
OfferedPeriod = make_dataclass("OfferedPeriod", [c.name for c in Period.__table__.columns], frozen=True, slots=True)


@dataclass(frozen=True)
class Offer:
    period: OfferedPeriod
    units: tuple[OfferedUnit, ...]
    weekdays: dict[int, str]  # unit id -> open weekdays ("01234")
    excludes: dict[int, frozenset[int]]
    closed: dict[date, str]  # every closed day of the period, with its reason


_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # engine's pool -> {period id: (version, Offer)}
_lock = threading.Lock()


def version_query():
    """The configuration's version, as a scalar subquery (0 before the first change)."""
    return select(Counter.value).where(Counter.name == VERSION).scalar_subquery()


def current_version(db: Session) -> int:
    return db.exec(select(version_query())).one() or 0


def period_offer(db: Session, period_id: int, version: int | None = None) -> Offer:
    """The offer of the period, from this process's memory when the version has not moved."""
    version = current_version(db) if version is None else version
    offers = _offers(db)
    cached = offers.get(period_id)
    if cached is not None and cached[0] == version:
        return cached[1]
    offer = load_offer(db, period_id)
    with _lock:
        offers[period_id] = (version, offer)
    return offer


def cached_offer(db: Session, period_id: int) -> Offer | None:
    """The offer of the period this process holds, whatever its version (None before its first load):
    what a caller may start from before it reads the version, then checks against it (``period_offer``)."""
    cached = _offers(db).get(period_id)
    return cached[1] if cached is not None else None


def _offers(db: Session) -> dict:
    pool = db.get_bind().pool  # one per database: an engine and its execution_options() share it
    with _lock:
        return _cache.setdefault(pool, {})


def load_offer(db: Session, period_id: int) -> Offer:
    period = db.get(Period, period_id)
    rows = db.exec(select(Unit, PeriodUnit.weekdays).join(PeriodUnit, PeriodUnit.unit_id == Unit.id)
                   .where(PeriodUnit.period_id == period_id).order_by(Unit.position, Unit.id)).all()
    units = tuple(OfferedUnit(u.id, u.establishment_id, u.code, u.label, u.short, u.position, u.capacity)
                  for u, _ in rows)
    excludes: dict[int, set[int]] = defaultdict(set)
    for unit_id, other_id in db.exec(select(UnitExclusion.unit_id, UnitExclusion.excluded_unit_id)
                                     .where(UnitExclusion.unit_id.in_([u.id for u in units]))):
        excludes[unit_id].add(other_id)
        excludes[other_id].add(unit_id)
    closed = dict(db.exec(select(ClosedDay.day, ClosedDay.reason).where(ClosedDay.period_id == period_id)).all())
    return Offer(OfferedPeriod(**{c.name: getattr(period, c.name) for c in Period.__table__.columns}),
                 units, {u.id: wd for u, wd in rows}, {k: frozenset(v) for k, v in excludes.items()}, closed)


@event.listens_for(OrmSession, "before_flush")
def _bump_version(session, flush_context, instances) -> None:
    """A period, unit, exclusion or closed day written: the version moves in the same transaction."""
    changed = [*session.new, *session.deleted, *(o for o in session.dirty if session.is_modified(o))]
    if any(isinstance(o, CONFIGURATION) for o in changed):
        session.connection().execute(increment(session, VERSION))  # on the connection: the session is flushing
