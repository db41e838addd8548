"""What agents decide on the requests and the waiting list."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import update
from sqlmodel import Session, select

from models import (
    Booking,
    Child,
    LineState,
    Period,
    Reservation,
    ReservationLine,
    Unit,
)
from services import outbox
from services.planning.confirmation import drop_booking, reservation_status
from services.planning.places import take_place
from services.planning.rules import PlanningError


def pending_lines(db: Session, establishment_id: int | None = None, period_id: int | None = None,
                  day: date | None = None) -> list[tuple[ReservationLine, Reservation, Child, Unit, Period]]:
    """Lines waiting for an agent (requests and waiting list), oldest reservation first."""
    query = (
        select(ReservationLine, Reservation, Child, Unit, Period)
        .join(Reservation, Reservation.id == ReservationLine.reservation_id)
        .join(Child, Child.id == Reservation.child_id)
        .join(Unit, Unit.id == ReservationLine.unit_id)
        .join(Period, Period.id == Reservation.period_id)
        .where(ReservationLine.state == LineState.PENDING)
        # absences first ("enfant malade", for today or tomorrow), then the oldest requests
        .order_by(Reservation.absence.desc(), Reservation.created_at, Reservation.id, ReservationLine.day, Unit.position)
    )
    if establishment_id:
        query = query.where(Period.establishment_id == establishment_id)
    if period_id:
        query = query.where(Period.id == period_id)
    if day:
        query = query.where(ReservationLine.day == day)
    return list(db.exec(query).all())


def decide_line(db: Session, agent_id: int, line_id: int, accept: bool, message: str, now: datetime,
                justified: bool = False, justification: str = "") -> ReservationLine:
    """Accept or refuse a pending line. ``db`` must be a ``writing_session``.

    Booking lines: accepting a waiting-list line takes a place (a French error when there is none);
    refusing frees the place a request held. Cancellation lines: accepting drops the booking and
    frees its place; the cancellation stays billable unless ``justified``. A decided line raises.
    """
    line = db.get(ReservationLine, line_id)
    if line is None or line.state != LineState.PENDING:
        db.rollback()
        raise PlanningError("Cette demande a déjà été traitée.")
    claimed = db.execute(update(ReservationLine).where(ReservationLine.id == line_id, ReservationLine.state == LineState.PENDING)
                         .values(state=LineState.DECIDING)).rowcount
    if claimed != 1:
        db.rollback()
        raise PlanningError("Cette demande a déjà été traitée.")
    reservation = db.get(Reservation, line.reservation_id)
    period = db.get(Period, reservation.period_id)
    unit = db.get(Unit, line.unit_id)
    if line.action == "cancel":
        booking = db.exec(select(Booking).where(Booking.cancel_line_id == line.id)).first()
        if accept:
            line.state = "accepted"
            line.justified, line.justification = justified, justification if justified else ""
            line.billable = not justified
            if booking is not None:
                drop_booking(db, booking, period, now)
        else:
            line.state = "refused"
            if booking is not None:
                booking.cancel_line_id = None
                db.add(booking)
    else:
        booking = db.exec(select(Booking).where(Booking.line_id == line.id)).first()
        if accept:
            if line.outcome == "waitlist" and not take_place(db, unit, line.day):
                db.rollback()
                raise PlanningError(f"{unit.label} du {line.day:%d/%m/%Y} est complet : impossible d'accepter pour le moment.")
            line.state = "accepted"
            if booking is not None:
                booking.status = "accepted"
                db.add(booking)
        else:
            line.state = "refused"
            if booking is not None:
                drop_booking(db, booking, period, now)
    line.message, line.decided_by_id, line.decided_at = message, agent_id, now
    db.add(line)
    db.flush()
    reservation.status = reservation_status(db.exec(select(ReservationLine).where(
        ReservationLine.reservation_id == reservation.id)).all())
    db.add(reservation)
    db.commit()
    return line


@dataclass
class Decided:
    """What ``decide`` did: the lines decided, the problems met (in French), the reservation and child."""

    lines: list[ReservationLine] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    reservation: Reservation | None = None
    child: Child | None = None


def decide(db: Session, agent_id: int, line_ids: list[int], accept: bool, message: str, now: datetime,
           justified: bool = False, justification: str = "") -> Decided:
    """Decide each line in its own transaction, then mail the family once (every guardian) and commit."""
    result = Decided()
    for line_id in line_ids:
        try:
            result.lines.append(decide_line(db, agent_id, line_id, accept, message, now, justified, justification))
        except PlanningError as exc:
            result.problems.append(str(exc))
    if not result.lines:
        return result
    reservation = result.reservation = db.get(Reservation, result.lines[0].reservation_id)
    child = result.child = db.get(Child, reservation.child_id)
    decided = [(line, db.get(Unit, line.unit_id)) for line in result.lines]
    verdict = "acceptée" if accept else "refusée"
    what = "demande d'annulation" if reservation.kind == "cancellation" else "demande"
    outbox.queue_family(db, reservation.family_id, f"Réservation {reservation.number} : {what} {verdict}",
                        "reservation_decided", child=child, reservation=reservation, decided=decided,
                        accepted=accept, message=message, what=what)
    db.commit()
    return result
