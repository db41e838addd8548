"""Places: taking one with a conditional UPDATE, freeing one, offering it to the waiting list."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import func, tuple_, update
from sqlmodel import Session, select

from db import upsert_insert
from models import (
    Booking,
    Child,
    DaySlot,
    Period,
    Reservation,
    ReservationLine,
    Unit,
)
from services import outbox
from services.planning.states import reservation_status

SLOTS = DaySlot.__table__


def take_place(db: Session, unit: Unit, day: date) -> bool:
    """Take one place on ``unit`` and ``day`` if one is free, atomically."""
    return (unit.id, day) in take_places(db, [(unit.id, day)])


def take_places(db: Session, wanted: list[tuple[int, date]]) -> set[tuple[int, date]]:
    """Take one place on each (unit id, day) that has one free, atomically; returns those taken.

    Three statements whatever the number of days: the missing counters are created, locked in a
    fixed order (PostgreSQL: two confirmations never wait on each other crosswise), then one
    conditional UPDATE takes a place wherever ``taken`` is under the day's capacity.
    """
    if not wanted:
        return set()
    keys = sorted(set(wanted))
    # One statement built the same whatever the number of days (its rows as parameters): compiled once.
    db.execute(upsert_insert(db)(SLOTS).on_conflict_do_nothing(), [{"unit_id": u, "day": d, "taken": 0} for u, d in keys])
    where = tuple_(DaySlot.unit_id, DaySlot.day).in_(keys)
    if db.get_bind().dialect.name == "postgresql":
        db.execute(select(DaySlot.unit_id).where(where).order_by(DaySlot.unit_id, DaySlot.day).with_for_update())
    capacity = select(Unit.capacity).where(Unit.id == DaySlot.unit_id).scalar_subquery()
    rows = db.execute(
        update(DaySlot).where(where, DaySlot.taken < func.coalesce(DaySlot.capacity, capacity))
        .values(taken=DaySlot.taken + 1).returning(DaySlot.unit_id, DaySlot.day)
        .execution_options(synchronize_session=False)
    ).all()
    return {(u, d) for u, d in rows}


def release_place(db: Session, unit_id: int, day: date) -> None:
    db.execute(update(DaySlot).where(DaySlot.unit_id == unit_id, DaySlot.day == day, DaySlot.taken > 0)
               .values(taken=DaySlot.taken - 1))


def free_place(db: Session, unit_id: int, day: date, period: Period, now: datetime) -> Booking | None:
    """Give back a place; when the period says so, the first on the waiting list takes it at once.

    Returns the waiting-list booking that got the place (its family is mailed), else None. Without
    automatic promotion, the agents' queue shows that a place is free for the first waiting line.
    """
    release_place(db, unit_id, day)
    if not period.waitlist_auto:
        return None
    first = db.exec(select(Booking).where(Booking.unit_id == unit_id, Booking.day == day, Booking.status == "waitlist")
                    .order_by(Booking.created_at, Booking.id)).first()
    if first is None or not take_place(db, db.get(Unit, unit_id), day):
        return None
    first.status = "accepted"
    line = db.get(ReservationLine, first.line_id)
    line.state, line.decided_at = "accepted", now
    line.message = "Une place s'est libérée : vous avez été retenu(e) depuis la liste d'attente."
    db.add_all([first, line])
    db.flush()
    reservation = db.get(Reservation, line.reservation_id)
    reservation.status = reservation_status(db.exec(select(ReservationLine).where(
        ReservationLine.reservation_id == reservation.id)).all())
    db.add(reservation)
    mail_promoted(db, reservation, line)
    return first


def mail_promoted(db: Session, reservation: Reservation, line: ReservationLine) -> None:
    child = db.get(Child, reservation.child_id)
    unit = db.get(Unit, line.unit_id)
    outbox.queue_family(db, reservation.family_id, f"Une place s'est libérée pour {child.first_name}",
                        "waitlist_promoted", child=child, reservation=reservation, line=line, unit=unit)


def overbooked(db: Session) -> list[tuple[int, date, int, int]]:
    """(unit, day, holding places, capacity) wherever more children hold a place than the unit has."""
    rows = db.exec(
        select(Booking.unit_id, Booking.day, func.count(), func.coalesce(DaySlot.capacity, Unit.capacity))
        .join(Unit, Unit.id == Booking.unit_id)
        .outerjoin(DaySlot, (DaySlot.unit_id == Booking.unit_id) & (DaySlot.day == Booking.day))
        .where(Booking.status.in_(("accepted", "request")))
        .group_by(Booking.unit_id, Booking.day, Unit.capacity, DaySlot.capacity)
    ).all()
    return [r for r in rows if r[2] > r[3]]


def free_places(db: Session, rows) -> set[tuple[int, date]]:
    """(unit, day) of the waiting-list lines in ``rows`` where a place is free now."""
    wanted = {(line.unit_id, line.day) for line, *_ in rows if line.outcome == "waitlist"}
    if not wanted:
        return set()
    capacity = {u.id: u.capacity for u in db.exec(select(Unit).where(Unit.id.in_({u for u, _ in wanted})))}
    slots = {(s.unit_id, s.day): s for s in db.exec(
        select(DaySlot).where(DaySlot.unit_id.in_({u for u, _ in wanted}), DaySlot.day.in_({d for _, d in wanted})))}
    free = set()
    for u, d in wanted:
        slot = slots.get((u, d))
        if slot is None or slot.taken < (capacity[u] if slot.capacity is None else slot.capacity):
            free.add((u, d))
    return free
