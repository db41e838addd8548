"""Periods as the town configures them: closed days, per-day capacities, and what a change costs.

A period that families already booked cannot lose days or units silently. ``lost_bookings`` lists
the bookings a new configuration would leave outside the period; the admin sees them and confirms,
then ``drop_bookings`` withdraws them, frees their places and tells each family by mail.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import Session, select

from models import Booking, Child, ClosedDay, DaySlot, Establishment, Family, Period, PeriodUnit, ReservationLine, Unit
from services import audit, outbox, planning

PERIOD_FIELDS = ("name", "start_date", "end_date", "booking_opens_at", "booking_closes_at", "auto_accept_days",
                 "min_days", "cancel_auto_days", "cancel_min_days", "cutoff_time", "working_days", "waitlist_auto",
                 "surcharge_percent")


def snapshot(period: Period, weekdays: dict[int, str]) -> dict:
    """The period as the journal keeps it: its fields, and each unit's open weekdays."""
    values = audit.snapshot(period, PERIOD_FIELDS)
    values = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in values.items()}
    return {**values, "unites": {str(k): v for k, v in sorted(weekdays.items())}}


@dataclass
class Saved:
    period: Period
    holidays_closed: int  # public holidays closed at once (each reopenable)


def save_period(db: Session, admin_id: int, establishment: Establishment, period: Period | None, values: dict,
                weekdays: dict[int, str], lost: list[Lost], now: datetime) -> Saved:
    """Create (``period`` None) or change a period: ``values`` holds PERIOD_FIELDS (booking times
    aware), ``weekdays`` each offered unit's open days; the bookings in ``lost`` (shown to the admin and
    confirmed) are withdrawn and their families told. Public holidays are closed; the journal records it."""
    before = snapshot(period, offered_weekdays(db, period)) if period else {}
    target = period or Period(establishment_id=establishment.id, name="", start_date=values["start_date"],
                              end_date=values["end_date"], booking_opens_at=now, booking_closes_at=now)
    for name in PERIOD_FIELDS:
        setattr(target, name, values[name])
    db.add(target)
    db.flush()
    for pu in db.exec(select(PeriodUnit).where(PeriodUnit.period_id == target.id)):
        if pu.unit_id not in weekdays:
            db.delete(pu)
    for unit_id, days in weekdays.items():
        pu = db.get(PeriodUnit, (target.id, unit_id)) or PeriodUnit(period_id=target.id, unit_id=unit_id)
        pu.weekdays = days
        db.add(pu)
    if lost:
        drop_bookings(db, admin_id, target, lost, now)
    closed = close_holidays(db, target)
    audit.record(db, admin_id, "update" if period else "create", "period", target.id,
                 f"Période {'modifiée' if period else 'créée'} : {target.name} ({establishment.name})",
                 before, snapshot(target, weekdays))
    db.commit()
    return Saved(target, closed)


def offered_weekdays(db: Session, period: Period) -> dict[int, str]:
    """The units the period offers, each with its open weekdays ("0134": no Wednesday)."""
    return {pu.unit_id: pu.weekdays for pu in db.exec(select(PeriodUnit).where(PeriodUnit.period_id == period.id))}


def holidays_between(start: date, end: date) -> list[tuple[date, str]]:
    """The French public holidays from ``start`` to ``end``, with their names."""
    found = []
    for year in range(start.year, end.year + 1):
        found += [(d, name) for d, name in planning.public_holidays(year).items() if start <= d <= end]
    return sorted(found)


def missing_holidays(db: Session, period: Period) -> list[tuple[date, str]]:
    """Public holidays of the period that are not closed days (proposed to the admin)."""
    closed = set(db.exec(select(ClosedDay.day).where(ClosedDay.period_id == period.id)).all())
    return [(d, name) for d, name in holidays_between(period.start_date, period.end_date) if d not in closed]


def close_holidays(db: Session, period: Period) -> int:
    """Add the period's public holidays as closed days ("Jour férié : Noël"); the caller commits."""
    added = missing_holidays(db, period)
    for day, name in added:
        db.add(ClosedDay(period_id=period.id, day=day, reason=f"Jour férié : {name}"))
    return len(added)


@dataclass
class Lost:
    """A booking a change would leave outside the period."""

    booking: Booking
    child: Child
    unit: Unit
    family: Family
    why: str


def lost_bookings(db: Session, period: Period, start: date, end: date, weekdays: dict[int, str],
                  closed: set[date]) -> list[Lost]:
    """Bookings of ``period`` that a configuration (dates, open weekdays per unit, closed days) excludes.

    ``weekdays`` maps each unit kept in the period to its open weekdays ("0134": no Wednesday).
    """
    unit_ids = set(db.exec(select(PeriodUnit.unit_id).where(PeriodUnit.period_id == period.id)).all())
    if not unit_ids:
        return []
    rows = db.exec(
        select(Booking, Child, Unit, Family)
        .join(Child, Child.id == Booking.child_id)
        .join(Unit, Unit.id == Booking.unit_id)
        .join(Family, Family.id == Booking.family_id)  # the household that booked it
        .where(Booking.unit_id.in_(unit_ids), Booking.day >= period.start_date, Booking.day <= period.end_date)
        .order_by(Booking.day, Unit.position, Child.last_name, Child.first_name)
    ).all()
    lost = []
    for booking, child, unit, family in rows:
        if not start <= booking.day <= end:
            why = "En dehors des nouvelles dates"
        elif unit.id not in weekdays:
            why = f"{unit.label} n'est plus proposé dans la période"
        elif str(booking.day.weekday()) not in weekdays[unit.id]:
            why = f"{unit.label} n'est plus proposé le {planning.WEEKDAYS[booking.day.weekday()].lower()}"
        elif booking.day in closed:
            why = "Jour fermé"
        else:
            continue
        lost.append(Lost(booking, child, unit, family, why))
    return lost


def drop_bookings(db: Session, admin_id: int, period: Period, lost: list[Lost], now: datetime) -> None:
    """Withdraw ``lost`` bookings: places freed, lines closed with a word, each family told once.

    The caller commits, with the change of the period itself.
    """
    by_family: dict[int, list[Lost]] = defaultdict(list)
    for item in lost:
        booking = db.get(Booking, item.booking.id)
        if booking is None:
            continue
        if booking.status in ("accepted", "request"):
            planning.release_place(db, booking.unit_id, booking.day)
        for line_id in (booking.line_id, booking.cancel_line_id):
            line = db.get(ReservationLine, line_id) if line_id else None
            if line is not None:
                line.state, line.decided_by_id, line.decided_at = "refused", admin_id, now
                line.message = f"Jour retiré par la structure : {item.why.lower()}."
                db.add(line)
        db.delete(booking)
        by_family[item.family.id].append(item)
        audit.record(db, admin_id, "delete", "booking", booking.id,
                     f"Réservation retirée ({period.name}) : {item.child.first_name} {item.child.last_name}, "
                     f"{item.unit.label} le {item.booking.day:%d/%m/%Y} — {item.why}",
                     family_id=item.family.id)
    for family_id, items in by_family.items():
        outbox.queue_family(db, family_id, f"Modification de la période « {period.name} »", "period_days_removed",
                            period=period, items=items)


def set_day_capacity(db: Session, unit_id: int, day: date, capacity: int | None) -> int:
    """Give ``unit_id`` its own capacity on ``day`` (None: back to the unit's); returns places taken."""
    slot = db.get(DaySlot, (unit_id, day))
    if slot is None:
        slot = DaySlot(unit_id=unit_id, day=day, taken=0)
    slot.capacity = capacity
    db.add(slot)
    return slot.taken


def day_capacities(db: Session, period: Period) -> list[tuple[DaySlot, Unit]]:
    unit_ids = select(PeriodUnit.unit_id).where(PeriodUnit.period_id == period.id)
    return list(db.exec(
        select(DaySlot, Unit).join(Unit, Unit.id == DaySlot.unit_id)
        .where(DaySlot.unit_id.in_(unit_ids), DaySlot.capacity.is_not(None),
               DaySlot.day >= period.start_date, DaySlot.day <= period.end_date)
        .order_by(DaySlot.day, Unit.position)
    ).all())


def overlapping(db: Session, establishment_id: int, start: date, end: date, except_id: int | None) -> list[Period]:
    """Other periods of the establishment sharing at least one day with ``start``–``end``."""
    query = select(Period).where(Period.establishment_id == establishment_id, Period.start_date <= end,
                                 Period.end_date >= start)
    if except_id:
        query = query.where(Period.id != except_id)
    return list(db.exec(query.order_by(Period.start_date)).all())
