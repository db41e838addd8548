"""The month planning: what each cell is, what a click does, and the confirmation.

Everything here takes ``now`` (an aware datetime) so that the deadlines can be tested at their
boundaries. Deadlines follow DOMAIN.md: days are counted from the counting start (today before the
period's cut-off time, tomorrow after it) to the booked date, in calendar or working days.
"""
from __future__ import annotations

import calendar
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache

import holidays
from sqlalchemy import delete, func, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from db import upsert_insert
from models import (
    Booking,
    Child,
    ClosedDay,
    DaySlot,
    Draft,
    DraftLine,
    Enrollment,
    Establishment,
    Family,
    Period,
    PeriodUnit,
    Reservation,
    ReservationLine,
    Unit,
    UnitExclusion,
    utcnow,
)
from services import outbox
from services.counters import next_value
from services.formatting import PARIS, count_words, plural

# Cell states: code -> (words shown to the parent, icon file). Never colour alone.
STATES = {
    "closed": ("Fermé", "closed"),
    "available": ("Disponible", "available"),
    "selected": ("Sélectionné (à confirmer)", "selected"),
    "booked": ("Réservé (réservation acceptée)", "booked"),
    "request": ("Demande de réservation", "request"),
    "waitlist": ("Liste d'attente", "waitlist"),
    "cancel_request": ("Demande d'annulation", "cancel-request"),
    "cancel_selected": ("Annulation sélectionnée (à confirmer)", "cancel-selected"),
    "full": ("Complet", "full"),
    "locked": ("Verrouillé (délai dépassé)", "locked"),
}
# What a selected cell will become once confirmed.
OUTCOMES = {
    "accepted": "réservation acceptée",
    "request": "demande de réservation",
    "waitlist": "liste d'attente",
}
CANCEL_OUTCOMES = {
    "accepted": "annulation acceptée",
    "request": "demande d'annulation",
}
RESERVATION_STATES = {
    "pending": ("En attente de traitement", "request"),
    "accepted": ("Acceptée", "booked"),
    "partial": ("Partiellement acceptée", "partial"),
    "refused": ("Refusée", "refused"),
}
LINE_STATES = {
    ("accepted", "accepted"): "Réservation acceptée",
    ("request", "pending"): "Demande de réservation, en attente",
    ("request", "accepted"): "Demande acceptée",
    ("waitlist", "pending"): "Liste d'attente",
    ("waitlist", "accepted"): "Place obtenue (liste d'attente)",
    ("cancel-accepted", "accepted"): "Annulation acceptée",
    ("cancel-request", "pending"): "Demande d'annulation, en attente",
    ("cancel-request", "accepted"): "Annulation acceptée par la structure",
}
WEEKDAYS = ["Lundi", "Mardi", "Mercredi", "Jeudi", "Vendredi", "Samedi", "Dimanche"]
MONTHS = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
          "octobre", "novembre", "décembre"]


class PlanningError(Exception):
    """A request the rules refuse; the message is French and shown as is."""


@lru_cache(maxsize=16)
def public_holidays(year: int) -> dict:
    """French public holidays of ``year``, with their French names."""
    return dict(holidays.France(years=year, language="fr"))


def holiday_name(day: date) -> str | None:
    return public_holidays(day.year).get(day)


def paris_now(now: datetime) -> datetime:
    return now.astimezone(PARIS)


def counting_start(period: Period, now: datetime) -> date:
    """The first counted day: today until the cut-off time, tomorrow after it (Paris time)."""
    local = paris_now(now)
    start = local.date()
    if local.time().replace(tzinfo=None) > period.cutoff_time:
        start += timedelta(days=1)
    return start


def days_ahead(period: Period, day: date, now: datetime) -> int:
    """Days from the counting start to ``day``: calendar days, or Monday-Friday non-holidays."""
    start = counting_start(period, now)
    if not period.working_days:
        return (day - start).days
    if day <= start:
        return (day - start).days
    count, current = 0, start
    while current < day:
        current += timedelta(days=1)
        if current.weekday() < 5 and holiday_name(current) is None:
            count += 1
    return count


def booking_rule(period: Period, day: date, now: datetime) -> tuple[str | None, str]:
    """('accepted'|'request', '') when ``day`` may be booked now, else (None, why it is locked)."""
    if day < paris_now(now).date():
        return None, "Date passée"
    if now < period.booking_opens_at:
        opens = paris_now(period.booking_opens_at)
        return None, f"Réservations ouvertes à partir du {opens:%d/%m/%Y à %H:%M}"
    if now > period.booking_closes_at:
        return None, "Période de réservation terminée : contactez la structure"
    ahead = days_ahead(period, day, now)
    if ahead < period.min_days:
        return None, f"Délai dépassé : il faut réserver au moins {period.min_days} jours à l'avance ; contactez la structure"
    if ahead < period.auto_accept_days:
        return "request", f"Moins de {period.auto_accept_days} jours à l'avance : demande traitée par la structure"
    return "accepted", ""


def cancel_rule(period: Period, status: str, day: date, now: datetime) -> tuple[str | None, str]:
    """('accepted'|'request', why) when a booking of ``day`` may be cancelled now, else (None, why not).

    A request or a waiting-list place not yet granted is withdrawn at once; an accepted booking
    follows the period's cancellation deadlines.
    """
    if day < paris_now(now).date():
        return None, "Date passée : contactez la structure"
    if status in ("request", "waitlist"):
        return "accepted", ""
    ahead = days_ahead(period, day, now)
    if ahead < period.cancel_min_days:
        return None, "Délai d'annulation dépassé : contactez la structure"
    if ahead < period.cancel_auto_days:
        return "request", (f"Moins de {period.cancel_auto_days} jours à l'avance : demande d'annulation traitée par "
                           "la structure, facturée sauf absence justifiée")
    return "accepted", ""


@dataclass
class Cell:
    day: date
    unit: Unit
    state: str
    reason: str = ""
    outcome: str = ""  # for "selected": what confirming will give
    clickable: bool = False
    conflict: str = ""  # locked because this unit, booked that day, cannot be combined with it

    @property
    def id(self) -> str:
        return f"cell-{self.day.isoformat()}-{self.unit.code}"

    @property
    def label(self) -> str:
        if self.conflict:  # not a deadline: say which booking is in the way
            return f"Non cumulable avec {self.conflict}"
        return STATES[self.state][0]

    @property
    def icon(self) -> str:
        if self.state == "selected":
            return {"accepted": "booked", "request": "request", "waitlist": "waitlist"}[self.outcome]
        return STATES[self.state][1]

    @property
    def words(self) -> str:
        """Everything a screen reader or a hover says about the cell."""
        text = self.label
        if self.state == "selected":
            text = f"Sélectionné : {OUTCOMES[self.outcome]} (à confirmer)"
        elif self.state == "cancel_selected":
            text = f"Annulation sélectionnée : {CANCEL_OUTCOMES[self.outcome]} (à confirmer)"
        if self.reason:
            text += f" — {self.reason}"
        return text


@dataclass
class Planning:
    """Everything needed to draw one month, loaded in a fixed number of queries."""

    child: Child
    period: Period
    units: list[Unit]
    weekdays: dict[int, str]  # unit id -> open weekdays
    excludes: dict[int, set[int]]
    closed: dict[date, str]
    draft: Draft | None
    draft_lines: dict[tuple[int, date], DraftLine]
    bookings: dict[tuple[int, date], Booking]
    taken: dict[tuple[int, date], int]
    now: datetime
    days: list[date] = field(default_factory=list)
    mode: str = "book"  # "book" or "cancel": what a click on a cell does
    capacities: dict[tuple[int, date], int] = field(default_factory=dict)  # days with their own capacity

    def unit(self, unit_id: int) -> Unit:
        return next(u for u in self.units if u.id == unit_id)

    def closed_reason(self, unit: Unit, day: date) -> str | None:
        if not (self.period.start_date <= day <= self.period.end_date):
            return "En dehors de la période"
        if day in self.closed:  # the town's closed days, public holidays included (proposed by services.periods)
            return self.closed[day]
        if str(day.weekday()) not in self.weekdays.get(unit.id, ""):
            return f"{unit.label} n'est pas proposé le {WEEKDAYS[day.weekday()].lower()}"
        return None

    def cell(self, unit: Unit, day: date) -> Cell:
        reason = self.closed_reason(unit, day)
        if reason:
            return Cell(day, unit, "closed", reason)
        booking = self.bookings.get((unit.id, day))
        line = self.draft_lines.get((unit.id, day))
        if booking is not None:
            return self._booked_cell(unit, day, booking, line)
        if self.mode == "cancel":
            cell = self._booking_cell(unit, day, line)
            cell.clickable, cell.reason = False, cell.reason or "Aucune réservation à annuler ce jour"
            return cell
        return self._booking_cell(unit, day, line)

    def _booked_cell(self, unit: Unit, day: date, booking: Booking, line: DraftLine | None) -> Cell:
        if booking.cancel_line_id:
            return Cell(day, unit, "cancel_request", "Annulation demandée : en attente de la structure")
        state = {"accepted": "booked", "request": "request", "waitlist": "waitlist"}[booking.status]
        outcome, why = cancel_rule(self.period, booking.status, day, self.now)
        if line is not None and line.action == "cancel":
            if outcome is None:  # the deadline passed since the selection: shown, then refused
                return Cell(day, unit, "locked", why, clickable=True)
            return Cell(day, unit, "cancel_selected", why, outcome=outcome, clickable=True)
        if self.mode == "cancel":
            return Cell(day, unit, state, why, clickable=outcome is not None)
        return Cell(day, unit, state, "Déjà réservé pour cet enfant" if state == "booked" else "")

    def _booking_cell(self, unit: Unit, day: date, line: DraftLine | None) -> Cell:
        if line is not None and line.action == "book":
            outcome = self.outcome(unit, day)
            if outcome is None:  # the deadline passed since the selection: shown, then refused
                return Cell(day, unit, "locked", booking_rule(self.period, day, self.now)[1], clickable=True)
            return Cell(day, unit, "selected", outcome=outcome, clickable=True)
        rule, why = booking_rule(self.period, day, self.now)
        if rule is None:
            return Cell(day, unit, "locked", why)
        conflict = self.excluded_booking(unit, day)
        if conflict:
            return Cell(day, unit, "locked", f"{conflict.label} est déjà réservé ce jour", conflict=conflict.label)
        if self.is_full(unit, day):
            return Cell(day, unit, "full", "Plus de place : un clic fait une demande en liste d'attente", clickable=True)
        return Cell(day, unit, "available", why, clickable=True)

    def cancel_outcome(self, unit: Unit, day: date) -> str | None:
        booking = self.bookings.get((unit.id, day))
        if booking is None or booking.cancel_line_id:
            return None
        return cancel_rule(self.period, booking.status, day, self.now)[0]

    def outcome(self, unit: Unit, day: date) -> str | None:
        rule, _ = booking_rule(self.period, day, self.now)
        if rule is None:
            return None
        return "waitlist" if self.is_full(unit, day) else rule

    def is_full(self, unit: Unit, day: date) -> bool:
        return self.taken.get((unit.id, day), 0) >= self.capacities.get((unit.id, day), unit.capacity)

    def excluded_booking(self, unit: Unit, day: date) -> Unit | None:
        for other_id in self.excludes.get(unit.id, ()):
            if (other_id, day) in self.bookings:
                return self.unit(other_id)
        return None

    def rows(self) -> list[tuple[date, list[Cell]]]:
        """One row per day on which the period offers at least one unit (no weekend rows)."""
        offered = set("".join(self.weekdays.values()))
        return [(day, [self.cell(u, day) for u in self.units]) for day in self.days if str(day.weekday()) in offered]

    def selected_count(self) -> int:
        return sum(1 for line in self.draft_lines.values() if line.action == "book")


def month_days(period: Period, month: date) -> list[date]:
    """The days of ``month`` inside the period."""
    last = calendar.monthrange(month.year, month.month)[1]
    first_day, last_day = date(month.year, month.month, 1), date(month.year, month.month, last)
    start, end = max(first_day, period.start_date), min(last_day, period.end_date)
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def period_months(period: Period) -> list[date]:
    """First day of every month the period touches."""
    months, current = [], date(period.start_date.year, period.start_date.month, 1)
    while current <= period.end_date:
        months.append(current)
        current = date(current.year + (current.month == 12), current.month % 12 + 1, 1)
    return months


def month_label(month: date) -> str:
    return f"{MONTHS[month.month - 1].capitalize()} {month.year}"


def load_planning(db: Session, child: Child, period: Period, days: list[date], now: datetime,
                  mode: str = "book") -> Planning:
    """Load what the cells of ``days`` need: units, closures, the draft, bookings and places taken."""
    rows = db.exec(
        select(Unit, PeriodUnit.weekdays)
        .join(PeriodUnit, PeriodUnit.unit_id == Unit.id)
        .where(PeriodUnit.period_id == period.id)
        .order_by(Unit.position, Unit.id)
    ).all()
    units = [unit for unit, _ in rows]
    weekdays = {unit.id: wd for unit, wd in rows}
    unit_ids = [u.id for u in units]
    excludes: dict[int, set[int]] = defaultdict(set)
    for ex in db.exec(select(UnitExclusion).where(UnitExclusion.unit_id.in_(unit_ids))):
        excludes[ex.unit_id].add(ex.excluded_unit_id)
        excludes[ex.excluded_unit_id].add(ex.unit_id)
    first, last = (min(days), max(days)) if days else (period.start_date, period.start_date)
    closed = {c.day: c.reason for c in db.exec(
        select(ClosedDay).where(ClosedDay.period_id == period.id, ClosedDay.day >= first, ClosedDay.day <= last))}
    draft = db.exec(select(Draft).where(Draft.child_id == child.id, Draft.period_id == period.id)).first()
    draft_lines = {}
    if draft is not None:
        draft_lines = {(l.unit_id, l.day): l for l in db.exec(
            select(DraftLine).where(DraftLine.draft_id == draft.id, DraftLine.day >= first, DraftLine.day <= last))}
    bookings = {(b.unit_id, b.day): b for b in db.exec(
        select(Booking).where(Booking.child_id == child.id, Booking.unit_id.in_(unit_ids),
                              Booking.day >= first, Booking.day <= last))}
    slots = db.exec(select(DaySlot).where(DaySlot.unit_id.in_(unit_ids), DaySlot.day >= first, DaySlot.day <= last)).all()
    taken = {(s.unit_id, s.day): s.taken for s in slots}
    capacities = {(s.unit_id, s.day): s.capacity for s in slots if s.capacity is not None}
    return Planning(child, period, units, weekdays, excludes, closed, draft, draft_lines, bookings, taken, now, days,
                    mode, capacities)


# --- access ---------------------------------------------------------------------------------------


def bookable_periods(db: Session, child: Child, now: datetime,
                     mode: str = "book") -> list[tuple[Establishment, list[Period]]]:
    """Establishments the child is enrolled in, with their periods open for booking now.

    For cancellations: the periods not over yet in which the child holds a booking.
    """
    result = []
    establishments = db.exec(
        select(Establishment).join(Enrollment, Enrollment.establishment_id == Establishment.id)
        .where(Enrollment.child_id == child.id).order_by(Establishment.name)
    ).all()
    for est in establishments:
        if mode == "cancel":
            periods = db.exec(
                select(Period).where(Period.establishment_id == est.id, Period.end_date >= paris_now(now).date())
                .where(select(Booking.id).join(Unit, Unit.id == Booking.unit_id)
                       .where(Booking.child_id == child.id, Unit.establishment_id == est.id,
                              Booking.day >= Period.start_date, Booking.day <= Period.end_date).exists())
                .order_by(Period.start_date)
            ).all()
            result.append((est, list(periods)))
            continue
        periods = db.exec(
            select(Period).where(
                Period.establishment_id == est.id,
                Period.booking_opens_at <= now,
                Period.booking_closes_at >= now,
                Period.end_date >= paris_now(now).date(),
            ).order_by(Period.start_date)
        ).all()
        result.append((est, list(periods)))
    return result


def period_for_child(db: Session, child: Child, period_id: int) -> Period | None:
    """The period, only when the child is enrolled in its establishment (else None: 404)."""
    return db.exec(select(Period).join(Enrollment, (Enrollment.establishment_id == Period.establishment_id)
                                       & (Enrollment.child_id == child.id))
                   .where(Period.id == period_id)).first()


# --- the draft --------------------------------------------------------------------------------------


def _draft(db: Session, child: Child, period: Period) -> Draft:
    """The draft of this child and period, created if need be, and locked until the caller commits.

    Two clicks at the same moment on one draft (the parent's phone and PC, the family's two guardians)
    are applied one after the other, each on what the other left: on PostgreSQL by the row lock taken
    here, on SQLite by the write lock a POST's transaction takes at its start.
    """
    query = select(Draft).where(Draft.child_id == child.id, Draft.period_id == period.id).with_for_update()
    draft = db.exec(query).first()
    if draft is None:
        draft = Draft(child_id=child.id, period_id=period.id)
        db.add(draft)
        try:
            db.flush()
        except IntegrityError:  # created by another request at the same moment: wait for it, then use it
            db.rollback()
            draft = db.exec(query).one()
    return draft


def _touch(draft: Draft) -> None:
    draft.revision += 1
    draft.updated_at = utcnow()


@dataclass
class Change:
    """What a click or a bulk action did: the cells to redraw and a sentence for the parent."""

    days: set[date] = field(default_factory=set)
    units: set[int] = field(default_factory=set)
    message: str = ""
    selected: int = 0
    skipped: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    planning: Planning | None = None  # the cells' data after the change: the answer need not reload it


def toggle(db: Session, child: Child, period: Period, unit_id: int, day: date, now: datetime,
           mode: str = "book") -> Change:
    """A click on a cell: select it (clearing units it excludes that day) or clear it.

    In "cancel" mode, a click on a booked cell selects its cancellation instead.
    """
    draft = _draft(db, child, period)  # locked first: the planning below is read after any click in flight
    planning = load_planning(db, child, period, [day], now, mode)
    if unit_id not in planning.weekdays:
        raise PlanningError("Cette unité n'existe pas dans cette période.")
    unit = planning.unit(unit_id)
    cell = planning.cell(unit, day)
    change = Change(days={day}, units={unit_id})
    if not cell.clickable:
        raise PlanningError(f"{unit.label} du {day:%d/%m/%Y} : {cell.words}")
    line = planning.draft_lines.get((unit_id, day))
    what = f"{unit.label} du {day:%d/%m/%Y}"
    if line is not None:
        db.delete(planning.draft_lines.pop((unit_id, day)))
        change.message = f"{what} : {'annulation' if line.action == 'cancel' else 'sélection'} retirée."
    elif mode == "cancel":
        outcome = planning.cancel_outcome(unit, day)
        line = DraftLine(draft_id=draft.id, unit_id=unit_id, day=day, action="cancel", expected=outcome)
        db.add(line)
        planning.draft_lines[(unit_id, day)] = line
        change.message = f"{what} : annulation sélectionnée, {CANCEL_OUTCOMES[outcome]} (à confirmer)."
    else:
        cleared = _clear_excluded(db, planning, unit, day)
        outcome = planning.outcome(unit, day)
        line = DraftLine(draft_id=draft.id, unit_id=unit_id, day=day, action="book", expected=outcome)
        db.add(line)
        planning.draft_lines[(unit_id, day)] = line
        change.units |= cleared
        change.message = f"{what} : sélectionné, {OUTCOMES[outcome]} (à confirmer)."
        if cleared:
            labels = ", ".join(planning.unit(u).label for u in cleared)
            change.message += f" {labels} retiré (non cumulable)."
    _touch(draft)
    db.add(draft)
    db.commit()
    planning.draft, change.planning = draft, planning
    return change


def _clear_excluded(db: Session, planning: Planning, unit: Unit, day: date) -> set[int]:
    cleared = set()
    for other_id in planning.excludes.get(unit.id, ()):
        line = planning.draft_lines.pop((other_id, day), None)
        if line is not None and line.action == "book":
            db.delete(line)
            cleared.add(other_id)
    return cleared


def bulk(db: Session, child: Child, period: Period, unit_id: int, days: list[date], select_days: bool,
         now: datetime, mode: str = "book") -> Change:
    """Select (or deselect) ``unit_id`` on every given day; only bookable days are selected.

    In "cancel" mode, selecting marks every cancellable booked day for cancellation.
    """
    draft = _draft(db, child, period)  # locked first, as for a click
    planning = load_planning(db, child, period, days, now, mode)
    if unit_id not in planning.weekdays:
        raise PlanningError("Cette unité n'existe pas dans cette période.")
    unit = planning.unit(unit_id)
    change = Change(units={unit_id})
    action = "cancel" if mode == "cancel" else "book"
    for day in days:
        line = planning.draft_lines.get((unit_id, day))
        if not select_days:
            if line is not None and line.action == action:
                db.delete(planning.draft_lines.pop((unit_id, day)))
                change.days.add(day)
                change.selected += 1
            continue
        cell = planning.cell(unit, day)
        if line is not None or not cell.clickable or cell.state in ("full", "locked"):
            if cell.state in ("full", "locked") or (mode == "cancel" and cell.state in ("booked", "request", "waitlist")):
                change.skipped[cell.state] += 1  # told to the parent: "Non sélectionnés : 2 complet"
            continue
        if mode == "cancel":
            if cell.state not in ("booked", "request", "waitlist"):
                continue
            expected = planning.cancel_outcome(unit, day)
        else:
            if cell.state != "available":
                continue
            change.units |= _clear_excluded(db, planning, unit, day)
            expected = planning.outcome(unit, day)
        new = DraftLine(draft_id=draft.id, unit_id=unit_id, day=day, action=action, expected=expected)
        db.add(new)
        planning.draft_lines[(unit_id, day)] = new
        change.days.add(day)
        change.selected += 1
    _touch(draft)
    db.add(draft)
    db.commit()
    n, plural = change.selected, "s" * (change.selected > 1)
    if mode == "cancel":
        change.message = (f"{unit.label} : {n} jour{plural} sélectionné{plural} pour annulation." if select_days
                          else f"{unit.label} : {n} annulation{plural} retirée{plural}.")
    elif select_days:
        change.message = f"{unit.label} : {n} jour{plural} sélectionné{plural}."
    else:
        change.message = f"{unit.label} : {n} jour{plural} désélectionné{plural}."
    skipped = [f"{k} {STATES[state][0].lower()}" for state, k in sorted(change.skipped.items()) if state != "closed"]
    if select_days and skipped:
        change.message += " Non sélectionnés : " + ", ".join(skipped) + "."
    return change


def days_to_cancel(db: Session, child: Child, period: Period, unit_id: int, days: list[date],
                   now: datetime) -> list[date]:
    """The booked days of ``unit_id`` that a bulk cancellation would mark, nothing written (to ask first)."""
    plan = load_planning(db, child, period, days, now, "cancel")
    if unit_id not in plan.weekdays:
        raise PlanningError("Cette unité n'existe pas dans cette période.")
    unit = plan.unit(unit_id)
    return [day for day in days if (unit_id, day) not in plan.draft_lines
            and plan.cell(unit, day).clickable and plan.cell(unit, day).state in ("booked", "request", "waitlist")]


def month_weeks(period: Period, month: date) -> list[date]:
    """The Mondays of the weeks of ``month`` that hold days of the period (the automatic selection's weeks)."""
    return sorted({day - timedelta(days=day.weekday()) for day in month_days(period, month)})


def auto_days(period: Period, weekdays: set[int], days: list[date]) -> list[date]:
    """The days among ``days`` that fall on the ticked weekdays (0 = Monday)."""
    return [d for d in days if d.weekday() in weekdays]


def all_period_days(period: Period) -> list[date]:
    return [period.start_date + timedelta(days=i) for i in range((period.end_date - period.start_date).days + 1)]


# --- the recap and the confirmation -----------------------------------------------------------------


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


def recap(db: Session, child: Child, period: Period, now: datetime,
          mode: str = "book") -> tuple[Draft | None, list[RecapLine]]:
    """The selected days (or cancellations) with their outcome if confirmed now, and why it changed."""
    draft = db.exec(select(Draft).where(Draft.child_id == child.id, Draft.period_id == period.id)).first()
    if draft is None:
        return None, []
    action = "cancel" if mode == "cancel" else "book"
    lines = db.exec(select(DraftLine).where(DraftLine.draft_id == draft.id, DraftLine.action == action)
                    .order_by(DraftLine.day)).all()
    if not lines:
        return draft, []
    planning = load_planning(db, child, period, sorted({l.day for l in lines}), now, mode)
    result = []
    for line in lines:
        unit = planning.unit(line.unit_id)
        note = ""
        if mode == "cancel":
            outcome = planning.cancel_outcome(unit, line.day)
            booking = planning.bookings.get((unit.id, line.day))
            if outcome is None:
                note = (cancel_rule(period, booking.status, line.day, now)[1] if booking and not booking.cancel_line_id
                        else "Plus de réservation à annuler ce jour")
            elif line.expected and outcome != line.expected:
                note = "Le délai d'annulation immédiate est passé : ce sera une demande d'annulation"
        else:
            outcome = planning.outcome(unit, line.day)
            if outcome is None:
                note = booking_rule(period, line.day, now)[1] or "Ce jour n'est plus réservable"
            elif line.expected and outcome != line.expected:
                note = _why_changed(line.expected, outcome)
        result.append(RecapLine(line.day, unit, line.expected or (outcome or ""), outcome, note))
    result.sort(key=lambda r: (r.day, r.unit.position))
    return draft, result


def _why_changed(expected: str, outcome: str | None) -> str:
    if outcome == "waitlist":
        return "Complet depuis votre sélection : la demande ira en liste d'attente"
    if outcome == "request" and expected == "accepted":
        return "Le délai d'acceptation immédiate est passé : ce sera une demande traitée par la structure"
    if outcome == "accepted":
        return "Une place s'est libérée : la réservation sera acceptée"
    return "Ce jour n'est plus réservable"


def _next_number(db: Session, year: int) -> str:
    """R-2027-000123: taken in the confirming transaction, so it never skips."""
    return f"R-{year}-{next_value(db, f'reservation-{year}'):06d}"


def _take_place(db: Session, unit: Unit, day: date) -> bool:
    """Take one place on ``unit`` and ``day`` if one is free, atomically."""
    return (unit.id, day) in _take_places(db, [(unit.id, day)])


def _take_places(db: Session, wanted: list[tuple[int, date]]) -> set[tuple[int, date]]:
    """Take one place on each (unit id, day) that has one free, atomically; returns those taken.

    Three statements whatever the number of days: the missing counters are created, locked in a
    fixed order (PostgreSQL: two confirmations never wait on each other crosswise), then one
    conditional UPDATE takes a place wherever ``taken`` is under the day's capacity.
    """
    if not wanted:
        return set()
    keys = sorted(set(wanted))
    db.execute(upsert_insert(db)(DaySlot).values([{"unit_id": u, "day": d, "taken": 0} for u, d in keys]).on_conflict_do_nothing())
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


def state_summary(lines: list[ReservationLine], cancellation: bool = False) -> str:
    """What the lines became, counted: "13 jours acceptés, 4 en attente" (the overall state alone would
    say "En attente de traitement" for 13 accepted days and 4 waiting)."""
    if cancellation:
        noun, e = "annulation", "e"
    elif len({l.day for l in lines}) == len(lines):
        noun, e = "jour", ""
    else:  # several units on one day: count the boxes ticked, not the days
        noun, e = "case", "e"
    parts = []  # the noun said once, with the first count
    for state, word in (("accepted", f"accepté{e}"), ("pending", None), ("refused", f"refusé{e}")):
        n = sum(1 for l in lines if l.state == state)
        if not n:
            continue
        if word is None:  # "en attente" does not take the plural
            parts.append(f"{count_words(n, noun) if not parts else n} en attente")
        else:
            parts.append(count_words(n, f"{noun} {word}" if not parts else word))
    return ", ".join(parts)


def reservation_status(lines: list[ReservationLine]) -> str:
    states = {l.state for l in lines}
    if "pending" in states:
        return "pending"
    if states == {"accepted"}:
        return "accepted"
    if states == {"refused"}:
        return "refused"
    return "partial"


def confirm(db: Session, user_id: int, child: Child, period: Period, revision: int, now: datetime) -> Reservation:
    """Record the draft as a numbered reservation, re-checking every rule and place now.

    ``db`` must be a ``writing_session``. Confirming the same revision twice (a double click, a
    replayed form) returns the first reservation. Raises PlanningError when nothing can be confirmed.
    """
    claim = _claim_draft(db, child, period, revision, "booking", "book")
    if isinstance(claim, Reservation):
        return claim
    draft, lines, key = claim
    reservation = _new_reservation(db, user_id, child, period, "booking", key, now)
    planning = load_planning(db, child, period, sorted({l.day for l in lines}), now)
    booked_today: dict[date, set[int]] = defaultdict(set)
    records, wanted = [], []
    for line in lines:  # first the rules; the places are then taken all at once
        unit = planning.unit(line.unit_id)
        rule, why = booking_rule(period, line.day, now)
        closed = planning.closed_reason(unit, line.day)
        conflict = planning.excluded_booking(unit, line.day) or next(
            (planning.unit(o) for o in planning.excludes.get(unit.id, ()) if o in booked_today[line.day]), None)
        record = ReservationLine(reservation_id=reservation.id, unit_id=unit.id, day=line.day, action="book")
        if closed or rule is None:
            record.outcome, record.state, record.note = "refused", "refused", closed or why
        elif (unit.id, line.day) in planning.bookings:
            record.outcome, record.state, record.note = "refused", "refused", "Déjà réservé pour cet enfant"
        elif conflict is not None:
            record.outcome, record.state, record.note = "refused", "refused", f"Non cumulable avec {conflict.label}"
        else:
            record.outcome = rule
            wanted.append((unit.id, line.day))
            booked_today[line.day].add(unit.id)
        records.append((record, line))
    taken = _take_places(db, wanted)
    for record, line in records:
        if record.state != "refused":
            if (record.unit_id, record.day) in taken:
                record.state = "accepted" if record.outcome == "accepted" else "pending"
            else:
                record.outcome, record.state = "waitlist", "pending"
        if line.expected and record.outcome != line.expected and not record.note:
            record.note = _why_changed(line.expected, record.outcome)
    records = [record for record, _ in records]
    db.add_all(records)
    db.flush()
    for record in records:
        if record.state != "refused":
            status = {"accepted": "accepted", "request": "request", "waitlist": "waitlist"}[record.outcome]
            db.add(Booking(child_id=child.id, unit_id=record.unit_id, day=record.day, status=status, line_id=record.id))
    reservation.status = reservation_status(records)
    db.execute(delete(DraftLine).where(DraftLine.draft_id == draft.id, DraftLine.action == "book"))
    return _commit_or_existing(db, reservation, key)


def _claim_draft(db: Session, child: Child, period: Period, revision: int, kind: str, action: str):
    """Claim this revision of the draft: (draft, lines, key), or the reservation that already confirmed it.

    The conditional UPDATE of the revision is the first write: a second confirmation of the same
    revision (a double click, a replayed form) waits for the first, then finds its reservation.
    """
    draft = db.exec(select(Draft).where(Draft.child_id == child.id, Draft.period_id == period.id)).first()
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


def _new_reservation(db: Session, user_id: int, child: Child, period: Period, kind: str, key: str, now: datetime,
                     absence: bool = False) -> Reservation:
    reservation = Reservation(
        number=_next_number(db, paris_now(now).year), family_id=child.family_id, child_id=child.id,
        period_id=period.id, kind=kind, confirm_key=key, created_by_id=user_id, created_at=now, absence=absence,
    )
    db.add(reservation)
    db.flush()
    return reservation


def _commit_or_existing(db: Session, reservation: Reservation, key: str) -> Reservation:
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
                         now: datetime) -> Reservation:
    """Record the selected cancellations as a new numbered record (the guide: every cancellation
    request is a new reservation). Only booked days are touched; replays return the first record.
    ``db`` must be a ``writing_session``.
    """
    claim = _claim_draft(db, child, period, revision, "cancellation", "cancel")
    if isinstance(claim, Reservation):
        return claim
    draft, lines, key = claim
    reservation = _new_reservation(db, user_id, child, period, "cancellation", key, now)
    records = [_cancel_line(db, reservation, period, child, line.unit_id, line.day, line.expected, now)
               for line in lines]
    reservation.status = reservation_status(records)
    db.execute(delete(DraftLine).where(DraftLine.draft_id == draft.id, DraftLine.action == "cancel"))
    return _commit_or_existing(db, reservation, key)


def _cancel_line(db: Session, reservation: Reservation, period: Period, child: Child, unit_id: int, day: date,
                 expected: str, now: datetime, absence: bool = False) -> ReservationLine:
    """One cancellation: accepted at once (the place is freed), a request for an agent, or refused."""
    booking = db.exec(select(Booking).where(Booking.child_id == child.id, Booking.unit_id == unit_id,
                                            Booking.day == day)).first()
    record = ReservationLine(reservation_id=reservation.id, unit_id=unit_id, day=day, action="cancel")
    if booking is None:
        record.outcome, record.state, record.note = "refused", "refused", "Ce jour n'était pas réservé"
    elif booking.cancel_line_id:
        record.outcome, record.state, record.note = "refused", "refused", "Annulation déjà demandée"
    else:
        outcome, why = cancel_rule(period, booking.status, day, now)
        if absence and booking.status == "accepted" and day >= paris_now(now).date():
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
        _drop_booking(db, booking, period, now)
    elif booking is not None and record.state == "pending":
        booking.cancel_line_id = record.id
        db.add(booking)
    return record


def _drop_booking(db: Session, booking: Booking, period: Period, now: datetime) -> None:
    """Remove a booking; a place it held is freed and offered to the waiting list."""
    held = booking.status in ("accepted", "request")
    unit_id, day = booking.unit_id, booking.day
    db.delete(booking)
    db.flush()
    if held:
        free_place(db, unit_id, day, period, now)


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
    if first is None or not _take_place(db, db.get(Unit, unit_id), day):
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
    _mail_promoted(db, reservation, line)
    return first


def _mail_promoted(db: Session, reservation: Reservation, line: ReservationLine) -> None:
    child = db.get(Child, reservation.child_id)
    unit = db.get(Unit, line.unit_id)
    for user in db.get(Family, reservation.family_id).users:
        if user.active:
            outbox.queue(db, user.email, f"Une place s'est libérée pour {child.first_name}", "waitlist_promoted",
                         user=user, child=child, reservation=reservation, line=line, unit=unit)


def family_reservations(db: Session, family_id: int) -> list[Reservation]:
    return list(db.exec(select(Reservation).where(Reservation.family_id == family_id)
                        .order_by(Reservation.created_at.desc(), Reservation.id.desc())))


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



# --- agents -----------------------------------------------------------------------------------------


def pending_lines(db: Session, establishment_id: int | None = None, period_id: int | None = None,
                  day: date | None = None) -> list[tuple[ReservationLine, Reservation, Child, Unit, Period]]:
    """Lines waiting for an agent (requests and waiting list), oldest reservation first."""
    query = (
        select(ReservationLine, Reservation, Child, Unit, Period)
        .join(Reservation, Reservation.id == ReservationLine.reservation_id)
        .join(Child, Child.id == Reservation.child_id)
        .join(Unit, Unit.id == ReservationLine.unit_id)
        .join(Period, Period.id == Reservation.period_id)
        .where(ReservationLine.state == "pending")
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


def decide_line(db: Session, agent_id: int, line_id: int, accept: bool, message: str, now: datetime,
                justified: bool = False, justification: str = "") -> ReservationLine:
    """Accept or refuse a pending line. ``db`` must be a ``writing_session``.

    Booking lines: accepting a waiting-list line takes a place (a French error when there is none);
    refusing frees the place a request held. Cancellation lines: accepting drops the booking and
    frees its place; the cancellation stays billable unless ``justified``. A decided line raises.
    """
    line = db.get(ReservationLine, line_id)
    if line is None or line.state != "pending":
        db.rollback()
        raise PlanningError("Cette demande a déjà été traitée.")
    claimed = db.execute(update(ReservationLine).where(ReservationLine.id == line_id, ReservationLine.state == "pending")
                         .values(state="deciding")).rowcount
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
                _drop_booking(db, booking, period, now)
        else:
            line.state = "refused"
            if booking is not None:
                booking.cancel_line_id = None
                db.add(booking)
    else:
        booking = db.exec(select(Booking).where(Booking.line_id == line.id)).first()
        if accept:
            if line.outcome == "waitlist" and not _take_place(db, unit, line.day):
                db.rollback()
                raise PlanningError(f"{unit.label} du {line.day:%d/%m/%Y} est complet : impossible d'accepter pour le moment.")
            line.state = "accepted"
            if booking is not None:
                booking.status = "accepted"
                db.add(booking)
        else:
            line.state = "refused"
            if booking is not None:
                _drop_booking(db, booking, period, now)
    line.message, line.decided_by_id, line.decided_at = message, agent_id, now
    db.add(line)
    db.flush()
    reservation.status = reservation_status(db.exec(select(ReservationLine).where(
        ReservationLine.reservation_id == reservation.id)).all())
    db.add(reservation)
    db.commit()
    return line


def absence_options(db: Session, child_ids: list[int], today: date) -> list[tuple[int, date, list[Unit]]]:
    """(child id, day, units held) for today and tomorrow, where an absence can still be signalled."""
    days = [today, today + timedelta(days=1)]
    rows = db.exec(select(Booking, Unit).join(Unit, Unit.id == Booking.unit_id)
                   .where(Booking.child_id.in_(child_ids), Booking.day.in_(days), Booking.cancel_line_id.is_(None))
                   .order_by(Booking.day, Booking.child_id, Unit.position)).all()
    grouped: dict[tuple[int, date], list[Unit]] = {}
    for booking, unit in rows:
        grouped.setdefault((booking.child_id, booking.day), []).append(unit)
    return [(child_id, day, units) for (child_id, day), units in grouped.items()]


def declare_absence(db: Session, user_id: int, child: Child, day: date, now: datetime) -> list[Reservation]:
    """An absence for today or tomorrow ("enfant malade"): a cancellation request of every unit the
    child holds that day, whatever the deadline, one record per establishment; agents see it first.
    ``db`` must be a ``writing_session``.
    """
    today = paris_now(now).date()
    if day not in (today, today + timedelta(days=1)):
        raise PlanningError("Une absence se signale pour aujourd'hui ou demain ; sinon, faites une demande d'annulation.")
    rows = db.exec(
        select(Booking, Unit, Period)
        .join(Unit, Unit.id == Booking.unit_id)
        .join(Period, (Period.establishment_id == Unit.establishment_id) & (Period.start_date <= day) & (Period.end_date >= day))
        .where(Booking.child_id == child.id, Booking.day == day, Booking.cancel_line_id.is_(None))
        .order_by(Period.id, Unit.position)
    ).all()
    if not rows:
        raise PlanningError(f"{child.first_name} n'a pas de réservation le {day:%d/%m/%Y}, ou son absence est déjà signalée.")
    made = []
    for period_id in dict.fromkeys(p.id for _, _, p in rows):
        group = [(b, u, p) for b, u, p in rows if p.id == period_id]
        period = group[0][2]
        key = f"absence:{child.id}:{period.id}:{day.isoformat()}:{now.timestamp():.0f}"
        reservation = _new_reservation(db, user_id, child, period, "cancellation", key, now, absence=True)
        records = [_cancel_line(db, reservation, period, child, b.unit_id, day, "", now, absence=True) for b, _, _ in group]
        reservation.status = reservation_status(records)
        made.append(reservation)
    db.commit()
    return made
