"""The recap and the confirmation of a booking or a cancellation, with the words of their states."""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import delete, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from models import (
    Booking,
    Child,
    Draft,
    DraftLine,
    LineState,
    Period,
    Reservation,
    ReservationLine,
    Unit,
    utcnow,
)
from services import documents
from services.calendar import paris_now, paris_today
from services.counters import next_value
from services.formatting import count_words, plural
from services.planning.grid import OpenedPlanning, load_planning, mode_action
from services.planning.places import free_place, take_places
from services.planning.rules import PlanningError, booking_rule, cancel_rule
from services.planning.states import reservation_status, status_of_states

# The tables the confirmation writes its rows into (Core: no ORM object per line).
LINES, BOOKINGS = ReservationLine.__table__, Booking.__table__


@dataclass
class RecapLine:
    day: date
    unit: Unit
    expected: str  # outcome shown on the planning
    outcome: str | None  # outcome if confirmed now (None: refused)
    note: str = ""

    @property
    def changed(self) -> bool:
        return self.expected != (self.outcome or "refused")

    @property
    def week(self) -> date:
        """The Monday of its week: the check screen groups the days by week."""
        return self.day - timedelta(days=self.day.weekday())


def household_draft(db: Session, child: Child, period: Period, family_id: int | None) -> Draft | None:
    """The draft of the household (the child's file's by default; shared custody: one per household)."""
    return db.exec(select(Draft).where(Draft.child_id == child.id, Draft.period_id == period.id,
                                       Draft.family_id == (family_id or child.family_id))).first()


def recap(db: Session, child: Child, period: Period, now: datetime, mode: str = "book",
          family_id: int | None = None, opened: OpenedPlanning | None = None) -> tuple[Draft | None, list[RecapLine]]:
    """The selected days (or cancellations) with their outcome if confirmed now, and why it changed.
    ``opened``: what ``grid.open_planning`` read already (the household's draft, the offer's version)."""
    draft = opened.draft if opened is not None else household_draft(db, child, period, family_id)
    if draft is None:
        return None, []
    action = mode_action(mode)
    lines = db.exec(select(DraftLine).where(DraftLine.draft_id == draft.id, DraftLine.action == action)
                    .order_by(DraftLine.day)).all()
    if not lines:
        return draft, []
    planning = load_planning(db, child, period, sorted({l.day for l in lines}), now, mode, draft=draft,
                             version=opened.version if opened is not None else None)
    result = []
    for line in lines:
        unit = planning.unit(line.unit_id)
        note = ""
        if mode == "cancel":
            outcome = planning.cancel_outcome(unit, line.day)
            booking = planning.bookings.get((unit.id, line.day))
            if outcome is None:
                note = (cancel_rule(period, booking.status, line.day, now)[1]
                        if booking and not booking.cancel_line_id and booking.family_id == planning.family_id
                        else "Plus de réservation à annuler ce jour")
            elif line.expected and outcome != line.expected:
                note = "Le délai d'annulation immédiate est passé : ce sera une demande d'annulation"
        else:
            outcome = planning.outcome(unit, line.day)
            other = planning.bookings.get((unit.id, line.day))
            if other is not None and other.family_id != planning.family_id:
                outcome, note = None, OTHER_HOUSEHOLD
            elif outcome is None:
                note = booking_rule(period, line.day, now)[1] or "Ce jour n'est plus réservable"
            elif line.expected and outcome != line.expected:
                note = why_changed(line.expected, outcome)
        result.append(RecapLine(line.day, unit, line.expected or (outcome or ""), outcome, note))
    result.sort(key=lambda r: (r.day, r.unit.position))
    return draft, result


OTHER_HOUSEHOLD = "Réservé par l'autre foyer entre-temps"


def why_changed(expected: str, outcome: str | None) -> str:
    if outcome == "waitlist":
        return "Complet depuis votre sélection : la demande ira en liste d'attente"
    if outcome == "request" and expected == "accepted":
        return "Le délai d'acceptation immédiate est passé : ce sera une demande traitée par la structure"
    if outcome == "accepted":
        return "Une place s'est libérée : la réservation sera acceptée"
    return "Ce jour n'est plus réservable"


def next_number(db: Session, year: int) -> str:
    """R-2027-000123: taken in the confirming transaction, so it never skips."""
    return f"R-{year}-{next_value(db, f'reservation-{year}'):06d}"


def recap_summary(lines: list[RecapLine], mode: str = "book") -> str:
    """What confirming will give, counted, said first on the check screen:
    "12 réservations acceptées, 4 demandes de réservation"."""
    if mode == "cancel":
        words = {"accepted": lambda n: count_words(n, "annulation acceptée"),
                 "request": lambda n: f"{count_words(n, 'demande')} d'annulation",
                 None: lambda n: f"{count_words(n, 'case')} sans annulation possible"}
    else:
        words = {"accepted": lambda n: count_words(n, "réservation acceptée"),
                 "request": lambda n: f"{count_words(n, 'demande')} de réservation",
                 "waitlist": lambda n: f"{n} en liste d'attente",
                 None: lambda n: f"{count_words(n, 'case')} non {plural(n, 'réservable')}"}
    counts = Counter(line.outcome for line in lines)
    return ", ".join(say(counts[outcome]) for outcome, say in words.items() if counts[outcome])


def confirm(db: Session, user_id: int, child: Child, period: Period, revision: int, now: datetime,
            family_id: int | None = None, opened: OpenedPlanning | None = None) -> Reservation:
    """Record the household's draft as a numbered reservation, re-checking every rule and place now.

    ``db`` must be a ``writing_session``. Confirming the same revision twice (a double click, a
    replayed form) returns the first reservation. Raises PlanningError when nothing can be confirmed.
    ``family_id``: the household confirming (the child's file's by default); a day the other household
    of a child in shared custody holds is refused. Two households confirming at once are taken one
    after the other (the reservation number's counter is locked by the first until it commits; SQLite
    writes one at a time), so the second reads the first's booking; the booking's unique key stays the
    last guard. ``opened``: what ``grid.open_planning`` read already (the draft, the offer's version).
    """
    blocking, _ = documents.missing_for(db, child, period.establishment_id, paris_today(now), family_id)
    if blocking:
        raise PlanningError(f"Pour réserver, envoyez d'abord dans « Mes documents » : {', '.join(blocking)}. "
                            "Votre sélection est gardée.")
    claim = claim_draft(db, child, period, revision, "booking", "book", family_id, opened)
    if isinstance(claim, Reservation):
        return claim
    draft, lines, key = claim
    reservation = new_reservation(db, user_id, child, period, "booking", key, now, family_id=draft.family_id)
    planning = load_planning(db, child, period, sorted({l.day for l in lines}), now, draft=draft,
                             version=opened.version if opened is not None else None)
    booked_today: dict[date, set[int]] = defaultdict(set)
    # The reservation's lines as rows (dicts), written in one statement each with their bookings: 20 days
    # would be 40 ORM objects and their unit of work, the confirmation's largest cost.
    records, wanted = [], []
    for line in lines:  # first the rules; the places are then taken all at once
        unit = planning.unit(line.unit_id)
        rule, why = booking_rule(period, line.day, now)
        closed = planning.closed_reason(unit, line.day)
        conflict = planning.excluded_booking(unit, line.day) or next(
            (planning.unit(o) for o in planning.excludes.get(unit.id, ()) if o in booked_today[line.day]), None)
        record = {"reservation_id": reservation.id, "unit_id": unit.id, "day": line.day, "action": "book",
                  "outcome": rule, "state": "pending", "note": ""}
        if closed or rule is None:
            record.update(outcome="refused", state="refused", note=closed or why)
        elif (unit.id, line.day) in planning.bookings:
            mine = planning.bookings[(unit.id, line.day)].family_id == draft.family_id
            record.update(outcome="refused", state="refused", note="Déjà réservé pour cet enfant" if mine else OTHER_HOUSEHOLD)
        elif conflict is not None:
            record.update(outcome="refused", state="refused", note=f"Non cumulable avec {conflict.label}")
        else:
            wanted.append((unit.id, line.day))
            booked_today[line.day].add(unit.id)
        records.append((record, line))
    taken = take_places(db, wanted)
    for record, line in records:
        if record["state"] != "refused":
            if (record["unit_id"], record["day"]) in taken:
                record["state"] = "accepted" if record["outcome"] == "accepted" else "pending"
            else:
                record.update(outcome="waitlist", state="pending")
        if line.expected and record["outcome"] != line.expected and not record["note"]:
            record["note"] = why_changed(line.expected, record["outcome"])
    records = [record for record, _ in records]
    ids = db.execute(insert(LINES).returning(LINES.c.id, sort_by_parameter_order=True), records).scalars().all()
    bookings = [{"child_id": child.id, "unit_id": record["unit_id"], "day": record["day"], "line_id": line_id,
                 "status": {"accepted": "accepted", "request": "request", "waitlist": "waitlist"}[record["outcome"]],
                 "family_id": reservation.family_id}
                for record, line_id in zip(records, ids) if record["state"] != "refused"]
    if bookings:
        db.execute(insert(BOOKINGS), bookings)
    reservation.status = status_of_states({record["state"] for record in records})
    db.execute(delete(DraftLine).where(DraftLine.draft_id == draft.id, DraftLine.action == "book"))
    return commit_or_existing(db, reservation, key)


def claim_draft(db: Session, child: Child, period: Period, revision: int, kind: str, action: str,
                family_id: int | None = None, opened: OpenedPlanning | None = None):
    """Claim this revision of the household's draft (``opened``'s when the caller read it): (draft, lines,
    key), or the reservation that already confirmed it.

    The conditional UPDATE of the revision is the first write: a second confirmation of the same
    revision (a double click, a replayed form) waits for the first, then finds its reservation.
    """
    draft = opened.draft if opened is not None else household_draft(db, child, period, family_id)
    nothing = "Aucun jour n'est sélectionné." if action == "book" else "Aucune annulation n'est sélectionnée."
    if draft is None:
        raise PlanningError(nothing)
    key = f"{draft.id}:{revision}:{kind}"
    claimed = db.execute(update(Draft).where(Draft.id == draft.id, Draft.revision == revision)
                         .values(revision=Draft.revision + 1, updated_at=utcnow())).rowcount
    if claimed != 1:
        db.rollback()
        existing = db.exec(select(Reservation).where(Reservation.confirm_key == key)).first()
        if existing is not None:
            return existing
        raise PlanningError("Le planning a changé entre-temps (sur un autre écran ?) : vérifiez-le avant de confirmer.")
    lines = db.exec(select(DraftLine).where(DraftLine.draft_id == draft.id, DraftLine.action == action)
                    .order_by(DraftLine.day, DraftLine.unit_id)).all()
    if not lines:
        db.rollback()
        raise PlanningError(nothing)
    return draft, lines, key


def new_reservation(db: Session, user_id: int, child: Child, period: Period, kind: str, key: str, now: datetime,
                     absence: bool = False, family_id: int | None = None) -> Reservation:
    """A numbered record of the household ``family_id`` (the child's file's by default)."""
    reservation = Reservation(
        number=next_number(db, paris_now(now).year), family_id=family_id or child.family_id, child_id=child.id,
        period_id=period.id, kind=kind, confirm_key=key, created_by_id=user_id, created_at=now, absence=absence,
    )
    db.add(reservation)
    db.flush()
    return reservation


def commit_or_existing(db: Session, reservation: Reservation, key: str) -> Reservation:
    try:
        db.commit()
    except IntegrityError:
        # Another confirmation of this revision won the race: show its reservation.
        db.rollback()
        existing = db.exec(select(Reservation).where(Reservation.confirm_key == key)).first()
        if existing is None:
            raise
        return existing
    return reservation


def confirm_cancellation(db: Session, user_id: int, child: Child, period: Period, revision: int,
                         now: datetime, family_id: int | None = None,
                         opened: OpenedPlanning | None = None) -> Reservation:
    """Record the selected cancellations as a new numbered record (the guide: every cancellation
    request is a new reservation). Only booked days are touched; replays return the first record.
    ``db`` must be a ``writing_session``.
    """
    claim = claim_draft(db, child, period, revision, "cancellation", "cancel", family_id, opened)
    if isinstance(claim, Reservation):
        return claim
    draft, lines, key = claim
    reservation = new_reservation(db, user_id, child, period, "cancellation", key, now, family_id=draft.family_id)
    records = [cancel_line(db, reservation, period, child, line.unit_id, line.day, line.expected, now)
               for line in lines]
    reservation.status = reservation_status(records)
    db.execute(delete(DraftLine).where(DraftLine.draft_id == draft.id, DraftLine.action == "cancel"))
    return commit_or_existing(db, reservation, key)


def cancel_line(db: Session, reservation: Reservation, period: Period, child: Child, unit_id: int, day: date,
                 expected: str, now: datetime, absence: bool = False) -> ReservationLine:
    """One cancellation: accepted at once (the place is freed), a request for an agent, or refused.
    Only the household that holds the booking can cancel it."""
    booking = db.exec(select(Booking).where(Booking.child_id == child.id, Booking.unit_id == unit_id,
                                            Booking.day == day, Booking.family_id == reservation.family_id)).first()
    record = ReservationLine(reservation_id=reservation.id, unit_id=unit_id, day=day, action="cancel")
    if booking is None:
        record.outcome, record.state, record.note = "refused", "refused", "Ce jour n'était pas réservé"
    elif booking.cancel_line_id:
        record.outcome, record.state, record.note = "refused", "refused", "Annulation déjà demandée"
    else:
        outcome, why = cancel_rule(period, booking.status, day, now)
        if absence and booking.status == "accepted" and day >= paris_today(now):
            outcome, why = "request", "Absence signalée : la structure décide si elle est justifiée"
        if outcome is None:
            record.outcome, record.state, record.note = "refused", "refused", why
        elif outcome == "accepted":
            record.outcome, record.state = "cancel-accepted", "accepted"
        else:
            record.outcome, record.state, record.note = "cancel-request", "pending", why
    if expected and record.outcome != {"accepted": "cancel-accepted", "request": "cancel-request"}.get(expected) \
            and record.state != "refused" and not record.note:
        record.note = "Le délai d'annulation immédiate est passé : c'est une demande d'annulation"
    db.add(record)
    db.flush()
    if booking is not None and record.state == "accepted":
        drop_booking(db, booking, period, now)
    elif booking is not None and record.state == LineState.PENDING:
        booking.cancel_line_id = record.id
        db.add(booking)
    return record


def drop_booking(db: Session, booking: Booking, period: Period, now: datetime) -> None:
    """Remove a booking; a place it held is freed and offered to the waiting list."""
    held = booking.status in ("accepted", "request")
    unit_id, day = booking.unit_id, booking.day
    db.delete(booking)
    db.flush()
    if held:
        free_place(db, unit_id, day, period, now)
