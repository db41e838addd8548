"""« Signaler une absence »: a child's booked units today or tomorrow, cancelled as an absence."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlmodel import Session, select

from models import (
    Booking,
    Child,
    Period,
    Reservation,
    Unit,
)
from services.calendar import paris_today
from services.planning.confirmation import cancel_line, new_reservation, reservation_status
from services.planning.rules import PlanningError


def absence_options(db: Session, family_id: int, today: date) -> list[tuple[int, date, list[Unit]]]:
    """(child id, day, units the household holds) for today and tomorrow, where an absence can still be
    signalled."""
    days = [today, today + timedelta(days=1)]
    rows = db.exec(select(Booking, Unit).join(Unit, Unit.id == Booking.unit_id)
                   .where(Booking.family_id == family_id, Booking.day.in_(days), Booking.cancel_line_id.is_(None))
                   .order_by(Booking.day, Booking.child_id, Unit.position)).all()
    grouped: dict[tuple[int, date], list[Unit]] = {}
    for booking, unit in rows:
        grouped.setdefault((booking.child_id, booking.day), []).append(unit)
    return [(child_id, day, units) for (child_id, day), units in grouped.items()]


def declare_absence(db: Session, user_id: int, child: Child, day: date, now: datetime,
                    family_id: int | None = None) -> list[Reservation]:
    """An absence for today or tomorrow ("enfant malade"): a cancellation request of every unit the
    household (``family_id``, the child's file's by default) holds for the child that day, whatever
    the deadline, one record per establishment; agents see it first. ``db`` must be a ``writing_session``.
    """
    family_id = family_id or child.family_id
    today = paris_today(now)
    if day not in (today, today + timedelta(days=1)):
        raise PlanningError("Une absence se signale pour aujourd'hui ou demain ; sinon, faites une demande d'annulation.")
    rows = db.exec(
        select(Booking, Unit, Period)
        .join(Unit, Unit.id == Booking.unit_id)
        .join(Period, (Period.establishment_id == Unit.establishment_id) & (Period.start_date <= day) & (Period.end_date >= day))
        .where(Booking.child_id == child.id, Booking.day == day, Booking.cancel_line_id.is_(None),
               Booking.family_id == family_id)
        .order_by(Period.id, Unit.position)
    ).all()
    if not rows:
        raise PlanningError(f"{child.first_name} n'a pas de réservation le {day:%d/%m/%Y}, ou son absence est déjà signalée.")
    made = []
    for period_id in dict.fromkeys(p.id for _, _, p in rows):
        group = [(b, u, p) for b, u, p in rows if p.id == period_id]
        period = group[0][2]
        key = f"absence:{child.id}:{period.id}:{day.isoformat()}:{now.timestamp():.0f}"
        reservation = new_reservation(db, user_id, child, period, "cancellation", key, now, absence=True,
                                      family_id=family_id)
        records = [cancel_line(db, reservation, period, child, b.unit_id, day, "", now, absence=True) for b, _, _ in group]
        reservation.status = reservation_status(records)
        made.append(reservation)
    db.commit()
    return made
