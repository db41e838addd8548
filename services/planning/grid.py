"""The month grid: each cell's state, words and icon, loaded for a set of days in a fixed number of queries."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import bindparam, func
from sqlmodel import Session, select

from db import in_one_trip
from models import Action, Booking, Child, DaySlot, Draft, DraftLine, Establishment, Period, PeriodUnit
from services.calendar import WEEKDAYS
from services.formatting import date_long
from services.planning.offer import Offer, OfferedPeriod, OfferedUnit, cached_offer, period_offer, version_query
from services.planning.rules import booking_rule, cancel_rule, enrolled, month_asked, month_days
from services.planning.states import OUTCOME_ICONS

# Cell states: code -> (words said to the parent, icon file, the short word the cell shows). Never colour alone.
STATES = {
    "closed": ("Fermé", "closed", "Fermé"),
    "available": ("Disponible", "available", "Libre"),
    "selected": ("Sélectionné (à confirmer)", "selected", "Choisi"),
    "booked": ("Réservé (réservation acceptée)", "booked", "Réservé"),
    "request": ("Demande de réservation", "request", "Demande"),
    "waitlist": ("Liste d'attente", "waitlist", "Attente"),
    "cancel_request": ("Demande d'annulation", "cancel-request", "Annul. dem."),
    "cancel_selected": ("Annulation sélectionnée (à confirmer)", "cancel-selected", "À annuler"),
    "full": ("Complet", "full", "Complet"),
    "locked": ("Verrouillé (délai dépassé)", "locked", "Verrouillé"),
    "other": ("Réservé par l'autre foyer", "other", "Autre foyer"),  # shared custody: nothing of the other home is shown
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


@dataclass
class Cell:
    day: date
    unit: OfferedUnit
    state: str
    reason: str = ""
    outcome: str = ""  # for "selected": what confirming will give
    clickable: bool = False
    conflict: str = ""  # locked because this unit, booked that day, cannot be combined with it

    @property
    def id(self) -> str:
        return f"cell-{self.day.isoformat()}-{self.unit.code}"

    @property
    def css(self) -> str:
        """The cell's classes: its state, and for a selection what confirming will give."""
        return f"cell cell--{self.state} will-{self.outcome}" if self.outcome else f"cell cell--{self.state}"

    @property
    def value(self) -> str:
        """What its button posts: "2027-07-06.3" (the day, the unit's id)."""
        return f"{self.day.isoformat()}.{self.unit.id}"

    @property
    def short(self) -> str:
        """The word shown in the cell (its icon drawn by the CSS)."""
        return "Non cumul." if self.conflict else STATES[self.state][2]

    @property
    def spoken(self) -> str:
        """The cell's whole name for a screen reader: the day, the unit, the state and the reason."""
        return f"{date_long(self.day)}, {self.unit.label} : {self.words}"

    @property
    def label(self) -> str:
        if self.conflict:  # not a deadline: say which booking is in the way
            return f"Non cumulable avec {self.conflict}"
        return STATES[self.state][0]

    @property
    def icon(self) -> str:
        if self.state == "selected":
            return OUTCOME_ICONS[self.outcome]
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


@dataclass(frozen=True, slots=True)
class NewLine:
    """A draft line a click has just written, as its planning shows it (the INSERT went with the COMMIT).
    No id: nothing in the same click may remove it, and a DELETE by a missing id would remove nothing."""

    unit_id: int
    day: date
    action: str
    expected: str


@dataclass(frozen=True, slots=True)
class Ref:
    """A child or a draft known by its id only: what a click needs of them (``drafts.locked_day``)."""

    id: int


@dataclass
class Planning:
    """Everything needed to draw one month, loaded in a fixed number of queries (a click's: its day)."""

    child: Child | Ref
    period: Period | OfferedPeriod
    units: list[OfferedUnit]
    weekdays: dict[int, str]  # unit id -> open weekdays
    excludes: dict[int, frozenset[int]]
    closed: dict[date, str]
    draft: Draft | Ref | None
    # Rows read with the columns of DraftLine and Booking (read-only: a click writes with its own
    # statements), and the line a click has just added (NewLine).
    draft_lines: dict[tuple[int, date], DraftLine | NewLine]
    bookings: dict[tuple[int, date], Booking]
    taken: dict[tuple[int, date], int]
    now: datetime
    days: list[date] = field(default_factory=list)
    mode: str = "book"  # "book" or "cancel": what a click on a cell does
    capacities: dict[tuple[int, date], int] = field(default_factory=dict)  # days with their own capacity
    family_id: int | None = None  # the household looking (shared custody); the child's file's by default
    _rules: dict[date, tuple[str | None, str]] = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.family_id = self.family_id or self.child.family_id

    def booking_rule(self, day: date) -> tuple[str | None, str]:
        """``rules.booking_rule`` of ``day``, the same for each of its units: worked out once a day."""
        rule = self._rules.get(day)
        if rule is None:
            rule = self._rules[day] = booking_rule(self.period, day, self.now)
        return rule

    def unit(self, unit_id: int) -> OfferedUnit:
        return next(u for u in self.units if u.id == unit_id)

    def closed_reason(self, unit: OfferedUnit, day: date) -> str | None:
        if not (self.period.start_date <= day <= self.period.end_date):
            return "En dehors de la période"
        if day in self.closed:  # the town's closed days, public holidays included (proposed by services.periods)
            return self.closed[day]
        if str(day.weekday()) not in self.weekdays.get(unit.id, ""):
            return f"{unit.label} n'est pas proposé le {WEEKDAYS[day.weekday()].lower()}"
        return None

    def cell(self, unit: OfferedUnit, day: date) -> Cell:
        reason = self.closed_reason(unit, day)
        if reason:
            return Cell(day, unit, "closed", reason)
        booking = self.bookings.get((unit.id, day))
        line = self.draft_lines.get((unit.id, day))
        if booking is not None and booking.family_id != self.family_id:
            return self._other_cell(unit, day, line)
        if booking is not None:
            return self._booked_cell(unit, day, booking, line)
        if self.mode == "cancel":
            cell = self._booking_cell(unit, day, line)
            cell.clickable, cell.reason = False, cell.reason or "Aucune réservation à annuler ce jour"
            return cell
        return self._booking_cell(unit, day, line)

    def _booked_cell(self, unit: OfferedUnit, day: date, booking: Booking, line: DraftLine | None) -> Cell:
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

    def _booking_cell(self, unit: OfferedUnit, day: date, line: DraftLine | None) -> Cell:
        if line is not None and line.action == "book":
            outcome = self.outcome(unit, day)
            if outcome is None:  # the deadline passed since the selection: shown, then refused
                return Cell(day, unit, "locked", self.booking_rule(day)[1], clickable=True)
            return Cell(day, unit, "selected", outcome=outcome, clickable=True)
        rule, why = self.booking_rule(day)
        if rule is None:
            return Cell(day, unit, "locked", why)
        conflict = self.excluded_booking(unit, day)
        if conflict and self.bookings[(conflict.id, day)].family_id != self.family_id:
            return self._other_cell(unit, day, line)
        if conflict:
            return Cell(day, unit, "locked", f"{conflict.label} est déjà réservé ce jour", conflict=conflict.label)
        if self.is_full(unit, day):
            return Cell(day, unit, "full", "Plus de place : un clic fait une demande en liste d'attente", clickable=True)
        return Cell(day, unit, "available", why, clickable=True)

    def _other_cell(self, unit: OfferedUnit, day: date, line: DraftLine | None) -> Cell:
        """A day the child's other household holds (shared custody): locked, and nothing more said of it;
        a selection made before it was taken can still be cleared."""
        return Cell(day, unit, "other", "Ce jour est réservé par l'autre foyer de l'enfant", clickable=line is not None)

    def cancel_outcome(self, unit: OfferedUnit, day: date) -> str | None:
        booking = self.bookings.get((unit.id, day))
        if booking is None or booking.cancel_line_id or booking.family_id != self.family_id:
            return None
        return cancel_rule(self.period, booking.status, day, self.now)[0]

    def outcome(self, unit: OfferedUnit, day: date) -> str | None:
        rule, _ = self.booking_rule(day)
        if rule is None:
            return None
        return "waitlist" if self.is_full(unit, day) else rule

    def is_full(self, unit: OfferedUnit, day: date) -> bool:
        return self.taken.get((unit.id, day), 0) >= self.capacities.get((unit.id, day), unit.capacity)

    def excluded_booking(self, unit: OfferedUnit, day: date) -> OfferedUnit | None:
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


def mode_action(mode: str) -> Action:
    """What a click writes in ``mode``: a cancellation in "cancel" mode, else a booking."""
    return Action.CANCEL if mode == "cancel" else Action.BOOK


def cases_count(draft_id, action):
    """How many of the draft's lines are of ``action`` (the planning's counter), as a scalar subquery;
    ``draft_id`` a value, or ``Draft.id`` of the query around it."""
    return (select(func.count()).select_from(DraftLine)
            .where(DraftLine.draft_id == draft_id, DraftLine.action == action).correlate(Draft).scalar_subquery())


@dataclass
class OpenedPlanning:
    """What the planning page needs before its month: read in one query by ``open_planning``."""

    child: Child
    period: Period
    establishment: Establishment
    draft: Draft | None
    version: int
    selected: int  # cases the draft holds in the page's mode


# The page's statements, built once (each request only gives their values).
_family, _first, _last = bindparam("family"), bindparam("first"), bindparam("last")
OPEN_PLANNING = (
    select(Child, Period, Establishment, version_query(), Draft, cases_count(Draft.id, bindparam("action")))
    .select_from(Child)
    .join(Period, Period.id == bindparam("period")).join(Establishment, Establishment.id == Period.establishment_id)
    .outerjoin(Draft, (Draft.child_id == Child.id) & (Draft.period_id == Period.id) & (Draft.family_id == _family))
    .where(Child.id == bindparam("child"), enrolled(_family)))
DRAFT_OF = select(Draft).where(Draft.child_id == bindparam("child"), Draft.period_id == bindparam("period"),
                               Draft.family_id == _family)
# The month's three reads, sent together (``db.in_one_trip``): Core statements, whose rows stand in for
# the draft's lines, the child's bookings and the days' places (the cells read their columns).
_line, _booking, _slot = DraftLine.__table__.c, Booking.__table__.c, DaySlot.__table__.c
_of_period = select(PeriodUnit.unit_id).where(PeriodUnit.period_id == bindparam("period"))
DRAFT_LINES = select(DraftLine.__table__).where(_line.draft_id == bindparam("draft"), _line.day >= _first, _line.day <= _last)
LINES_OF = (select(DraftLine.__table__).join(Draft, Draft.id == _line.draft_id)
            .where(Draft.child_id == bindparam("child"), Draft.period_id == bindparam("period"), Draft.family_id == _family,
                   _line.day >= _first, _line.day <= _last))
BOOKINGS = select(Booking.__table__).where(_booking.child_id == bindparam("child"), _booking.unit_id.in_(_of_period),
                                           _booking.day >= _first, _booking.day <= _last)
SLOTS = select(DaySlot.__table__).where(_slot.unit_id.in_(_of_period), _slot.day >= _first, _slot.day <= _last)


def open_planning(db: Session, family_id: int, child_id: int, period_id: int, mode: str = "book") -> OpenedPlanning | None:
    """The child, the period, its establishment, the offer's version, the draft and its count, in one
    query; None when the child is not the family's or not enrolled where the period is (404)."""
    row = db.exec(OPEN_PLANNING, params={"family": family_id, "child": child_id, "period": period_id,
                                         "action": mode_action(mode)}).first()
    if row is None:
        return None
    child, period, establishment, version, draft, count = row
    return OpenedPlanning(child, period, establishment, draft, version or 0, count or 0)


def load_planning(db: Session, child: Child, period: Period, days: list[date], now: datetime,
                  mode: str = "book", draft: Draft | None = None, version: int | None = None,
                  family_id: int | None = None) -> Planning:
    """Load what the cells of ``days`` need: the period's offer (from memory, see ``offer``), the
    household's draft (``draft`` when the caller holds it already), the child's bookings (both
    households', for a child in shared custody) and the places taken. ``family_id``: the household
    looking, the child's file's by default."""
    family_id = draft.family_id if draft is not None else family_id or child.family_id
    offer = period_offer(db, period.id, version)
    if draft is None:
        draft = db.exec(DRAFT_OF, params={"child": child.id, "period": period.id, "family": family_id}).first()
    reads = _month_reads(child.id, period.id, family_id, days, draft.id if draft is not None else None)
    return _planning(child, offer, draft, family_id, days, now, mode, in_one_trip(db, reads))


def _month_reads(child_id: int, period_id: int, family_id: int, days: list[date], draft_id: int | None) -> list:
    """The month's reads: the child's bookings, the days' places, the draft's lines (by the draft's id, or
    found by the child, the period and the household when ``draft_id`` is None)."""
    first, last = (min(days), max(days)) if days else (date.min, date.min)
    days_of = {"first": first, "last": last, "period": period_id}
    lines = ((DRAFT_LINES, {"draft": draft_id, "first": first, "last": last}) if draft_id is not None
             else (LINES_OF, {"child": child_id, "family": family_id, **days_of}))
    return [(BOOKINGS, {"child": child_id, **days_of}), (SLOTS, days_of), lines]


def _planning(child, offer: Offer, draft, family_id: int, days: list[date], now: datetime, mode: str,
              rows: list[list]) -> Planning:
    """The planning of ``days`` from the rows of ``_month_reads``."""
    booked, slots, lined = rows
    return Planning(child, offer.period, list(offer.units), offer.weekdays, offer.excludes, offer.closed, draft,
                    {(l.unit_id, l.day): l for l in lined}, {(b.unit_id, b.day): b for b in booked},
                    {(s.unit_id, s.day): s.taken for s in slots}, now, days, mode,
                    {(s.unit_id, s.day): s.capacity for s in slots if s.capacity is not None}, family_id)


@dataclass(frozen=True, slots=True)
class Shown:
    """A child or an establishment as the planning page names it (``open_month``)."""

    id: int
    name: str = ""
    first_name: str = ""
    last_name: str = ""
    family_id: int | None = None


@dataclass
class OpenedMonth:
    """The planning page: its child, period, establishment, month and cells, and the cases selected."""

    child: Shown
    period: OfferedPeriod
    establishment: Shown
    month: date
    plan: Planning
    selected: int


_child, _establishment = Child.__table__.c, Establishment.__table__.c
OPEN_MONTH = (
    select(_child.id, _child.first_name, _child.last_name, _child.family_id,
           _establishment.id.label("establishment_id"), _establishment.name.label("establishment_name"),
           version_query().label("version"), Draft.id.label("draft_id"),
           cases_count(Draft.id, bindparam("action")).label("selected"))
    .select_from(Child)
    .join(Period, Period.id == bindparam("period")).join(Establishment, Establishment.id == Period.establishment_id)
    .outerjoin(Draft, (Draft.child_id == Child.id) & (Draft.period_id == Period.id) & (Draft.family_id == _family))
    .where(Child.id == bindparam("child"), enrolled(_family)))


def open_month(db: Session, family_id: int, child_id: int, period_id: int, month_text: str | None, now: datetime,
               mode: str = "book") -> OpenedMonth | None:
    """The planning page's month: None when the child is not the household's or not enrolled where the
    period is (404); ValueError when ``month_text`` is not a month ("YYYY-MM"; none: the soonest one).

    The period's offer is in this process's memory after its first page: its month's reads then travel
    with the statement that checks the child, reads the offer's version, the draft and its count (one
    round trip on PostgreSQL). What they read of a child that is not the household's is dropped unseen.
    Should the version have moved, the offer is reloaded, and the month read again if its days moved.
    """
    opening = (OPEN_MONTH, {"family": family_id, "child": child_id, "period": period_id, "action": mode_action(mode)})
    cached = cached_offer(db, period_id)
    month = days = month_rows = None
    if cached is None:  # this process has not seen the period yet: check, then read its month
        opened = in_one_trip(db, [opening])[0]
    else:
        month = month_asked(cached.period, month_text, now)
        days = month_days(cached.period, month)
        opened, *month_rows = in_one_trip(db, [opening, *_month_reads(child_id, period_id, family_id, days, None)])
    if not opened:
        return None
    row = opened[0]
    offer = period_offer(db, period_id, row.version or 0)
    if offer is not cached:  # first seen, or reloaded: its dates may have moved
        shown = month_asked(offer.period, month_text, now)
        shown_days = month_days(offer.period, shown)
        if month_rows is None or shown_days != days:
            month_rows = in_one_trip(db, _month_reads(child_id, period_id, family_id, shown_days, row.draft_id))
        month, days = shown, shown_days
    child = Shown(row.id, first_name=row.first_name, last_name=row.last_name, family_id=row.family_id)
    draft = Ref(row.draft_id) if row.draft_id is not None else None
    plan = _planning(child, offer, draft, family_id, days, now, mode, month_rows)
    return OpenedMonth(child, offer.period, Shown(row.establishment_id, row.establishment_name), month, plan,
                       row.selected or 0)
