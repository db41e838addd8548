"""The draft: what a parent ticks before confirming (a click, a whole unit, the automatic selection)."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import bindparam, delete, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, select

from db import in_one_trip
from models import (
    Booking,
    Child,
    DaySlot,
    Draft,
    DraftLine,
    Period,
    PeriodUnit,
    Unit,
    utcnow,
)
from services.formatting import count_words
from services.planning.grid import (
    CANCEL_OUTCOMES,
    OUTCOMES,
    STATES,
    NewLine,
    Planning,
    Ref,
    cases_count,
    load_planning,
    mode_action,
)
from services.planning.offer import OfferedPeriod, period_offer, version_query
from services.planning.rules import PlanningError, enrolled


def draft_for(db: Session, child: Child, period: Period, family_id: int) -> Draft:
    """The household's draft of this child and period, created if need be, and locked until the caller
    commits (a child in shared custody has one per household: each books its own days).

    Two clicks at the same moment on one draft (the parent's phone and PC, the family's two guardians)
    are applied one after the other, each on what the other left: on PostgreSQL by the row lock taken
    here, on SQLite by the write lock a POST's transaction takes at its start.
    """
    query = (select(Draft).where(Draft.child_id == child.id, Draft.period_id == period.id, Draft.family_id == family_id)
             .with_for_update())
    draft = db.exec(query).first()
    if draft is None:
        draft = Draft(child_id=child.id, period_id=period.id, family_id=family_id)
        db.add(draft)
        try:
            db.flush()
        except IntegrityError:  # created by another request at the same moment: wait for it, then use it
            db.rollback()
            draft = db.exec(query).one()
    return draft


@dataclass
class Change:
    """What a click or a bulk action did: the cells to redraw and a sentence for the parent."""

    days: set[date] = field(default_factory=set)
    units: set[int] = field(default_factory=set)
    message: str = ""
    selected: int = 0
    skipped: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    planning: Planning | None = None  # the cells' data after the change: the answer need not reload it
    total: int | None = None  # once written: the cases the draft holds in this mode
    to_confirm: list[date] = field(default_factory=list)  # a bulk held back: the days it would mark, to ask first


def toggle(db: Session, child: Child, period: Period, unit_id: int, day: date, now: datetime,
           mode: str = "book", family_id: int | None = None) -> Change:
    """A click on a cell: select it (clearing units it excludes that day) or clear it; committed.

    In "cancel" mode, a click on a booked cell selects its cancellation instead. Raises PlanningError
    (nothing written) when the cell cannot be clicked; ``change.total`` says how many cases the draft
    now holds in this mode. ``family_id``: the household clicking (the child's file's by default).
    """
    day_state = locked_day(db, family_id or child.family_id, child.id, period.id, day, now, mode)
    if day_state is None:
        raise PlanningError("Cet enfant n'est pas inscrit dans cette structure.")
    return apply_click(db, *day_state, unit_id, day)


def locked_day(db: Session, family_id: int, child_id: int, period_id: int, day: date, now: datetime,
               mode: str = "book") -> tuple[Planning, int] | None:
    """The draft locked, its revision moved on, and what the cells of ``day`` need; None when the child
    is not the family's or not enrolled where the period is.

    Two statements, sent together (``db.in_one_trip``): the UPDATE of the revision, which checks
    ownership and takes the draft's row lock, then one read of the day (the offer's version, the day's
    draft lines, bookings and places, and how many cases the draft holds); the period comes with its
    offer, from memory. The child and the draft
    are known by their ids only (``Ref``). The read comes after the lock, so a click
    in flight on the same draft (the parent's phone and PC, the family's two guardians) is seen whole:
    clicks on one draft apply one after the other. The draft's first click creates it first.
    """
    lock = {"family": family_id, "child": child_id, "period": period_id, "now": utcnow()}
    read = {"family": family_id, "child": child_id, "period": period_id, "day": day, "action": mode_action(mode)}
    steps = [(LOCK_DRAFT, lock), (READ_DAY, read)]
    locked, rows = in_one_trip(db, steps)
    if not locked:
        owned = db.exec(select(Child, Period).join(Period, Period.id == period_id).where(Child.id == child_id,
                                                    enrolled(family_id))).first()
        if owned is None:
            return None
        draft_for(db, *owned, family_id)
        locked, rows = in_one_trip(db, steps)
    draft_id = locked[0].id
    first = rows[0]
    offer = period_offer(db, first.period_id, first.version or 0)
    # The rows stand for the day's draft lines, bookings and places: the cells read their columns.
    lines = {(r.line_unit, day): r for r in rows if r.id is not None}
    bookings = {(r.booking_unit, day): r for r in rows if r.booking_unit is not None}
    slots = [r for r in rows if r.slot_unit is not None]
    return Planning(Ref(child_id), offer.period, list(offer.units), offer.weekdays, offer.excludes,
                    offer.closed, Ref(draft_id), lines, bookings,
                    {(s.slot_unit, day): s.taken for s in slots}, now, [day], mode,
                    {(s.slot_unit, day): s.capacity for s in slots if s.capacity is not None}, family_id), first.total


# The statements of a click, built once (it is the registration morning's hottest route): the ids, the
# day and the time come as parameters. The lock and the writes are Core statements run on the session's
# connection: the ORM's bookkeeping for them (a quarter of a millisecond each) would be spent while the
# draft, and on SQLite the whole database, is locked.
_draft = Draft.__table__.c
LOCK_DRAFT = (
    update(Draft.__table__)
    .where(_draft.child_id == bindparam("child"), _draft.period_id == bindparam("period"),
           _draft.family_id == bindparam("family"),
           select(Child.id).join(Period, Period.id == _draft.period_id)
           .where(Child.id == _draft.child_id, enrolled(bindparam("family"))).exists())
    .values(revision=_draft.revision + 1, updated_at=bindparam("now")).returning(_draft.id))  # READ_DAY rereads it
_day = bindparam("day")
_line, _booking, _slot = DraftLine.__table__.c, Booking.__table__.c, DaySlot.__table__.c
READ_DAY = (  # one row per unit of the period, with that unit's line, booking and places on the day
    select(_draft.period_id, version_query().label("version"),
           cases_count(_draft.id, bindparam("action")).label("total"),
           _line.id, _line.unit_id.label("line_unit"), _line.action, _line.expected,
           _booking.unit_id.label("booking_unit"), _booking.status, _booking.family_id, _booking.cancel_line_id,
           _slot.unit_id.label("slot_unit"), _slot.taken, _slot.capacity)
    .select_from(Draft.__table__)
    .outerjoin(PeriodUnit.__table__, PeriodUnit.__table__.c.period_id == _draft.period_id)
    .outerjoin(DraftLine.__table__, (_line.draft_id == _draft.id) & (_line.unit_id == PeriodUnit.__table__.c.unit_id)
               & (_line.day == _day))
    .outerjoin(Booking.__table__, (_booking.child_id == _draft.child_id)
               & (_booking.unit_id == PeriodUnit.__table__.c.unit_id) & (_booking.day == _day))
    .outerjoin(DaySlot.__table__, (_slot.unit_id == PeriodUnit.__table__.c.unit_id) & (_slot.day == _day))
    .where(_draft.child_id == bindparam("child"), _draft.period_id == bindparam("period"),
           _draft.family_id == bindparam("family")))
# The click's writes, without the unit of work's flush (the draft is locked: nothing else writes its lines).
ADD_LINE = insert(DraftLine.__table__).values(draft_id=bindparam("draft"), unit_id=bindparam("unit"), day=bindparam("day"),
                                              action=bindparam("action"), expected=bindparam("expected"))
REMOVE_LINE = delete(DraftLine.__table__).where(DraftLine.__table__.c.id == bindparam("line"))


def add_line(writes: list, planning: Planning, unit_id: int, day: date, action: str, expected: str) -> None:
    """Add the draft line's INSERT to ``writes`` and show the line in ``planning`` (it is not the session's)."""
    writes.append((ADD_LINE, {"draft": planning.draft.id, "unit": unit_id, "day": day, "action": action, "expected": expected}))
    planning.draft_lines[(unit_id, day)] = NewLine(unit_id, day, action, expected)


def remove_line(writes: list, planning: Planning, unit_id: int, day: date) -> DraftLine:
    line = planning.draft_lines.pop((unit_id, day))
    writes.append((REMOVE_LINE, {"line": line.id}))
    return line


def apply_click(db: Session, planning: Planning, total: int, unit_id: int, day: date) -> Change:
    """The click on the planning ``locked_day`` read, written and committed; ``total``: the cases before."""
    if unit_id not in planning.weekdays:
        raise PlanningError("Cette unité n'existe pas dans cette période.")
    mode = planning.mode
    action = mode_action(mode)
    unit = planning.unit(unit_id)
    cell = planning.cell(unit, day)
    change = Change(days={day}, units={unit_id})
    if not cell.clickable:
        raise PlanningError(f"{unit.label} du {day:%d/%m/%Y} : {cell.words}")
    line = planning.draft_lines.get((unit_id, day))
    what = f"{unit.label} du {day:%d/%m/%Y}"
    writes = []  # sent with the COMMIT, in one round trip on PostgreSQL: the draft stays locked until then
    if line is not None:
        remove_line(writes, planning, unit_id, day)
        total -= line.action == action
        change.message = f"{what} : {'annulation' if line.action == 'cancel' else 'sélection'} retirée."
    elif mode == "cancel":
        outcome = planning.cancel_outcome(unit, day)
        add_line(writes, planning, unit_id, day, "cancel", outcome)
        total += 1
        change.message = f"{what} : annulation sélectionnée, {CANCEL_OUTCOMES[outcome]} (à confirmer)."
    else:
        cleared = clear_excluded(writes, planning, unit, day)
        outcome = planning.outcome(unit, day)
        add_line(writes, planning, unit_id, day, "book", outcome)
        total += 1 - len(cleared)
        change.units |= cleared
        change.message = f"{what} : sélectionné, {OUTCOMES[outcome]} (à confirmer)."
        if cleared:
            labels = ", ".join(planning.unit(u).label for u in cleared)
            change.message += f" {labels} retiré (non cumulable)."
    in_one_trip(db, writes, commit=True)
    change.total, change.planning = total, planning
    return change


def bump_revision(db: Session, draft: Draft, action: str) -> int:
    """The draft's next revision, written after its lines: one UPDATE that also counts its cases of ``action``."""
    db.flush()
    revision, updated_at, total = db.execute(
        update(Draft).where(Draft.id == draft.id).values(revision=Draft.revision + 1, updated_at=utcnow())
        .returning(Draft.revision, Draft.updated_at, cases_count(draft.id, action))).one()
    set_committed_value(draft, "revision", revision)
    set_committed_value(draft, "updated_at", updated_at)
    return total


def clear_excluded(writes: list, planning: Planning, unit: Unit, day: date) -> set[int]:
    """The units ``unit`` excludes that are selected on ``day``: their lines' DELETEs added to ``writes``."""
    cleared = set()
    for other_id in planning.excludes.get(unit.id, ()):
        line = planning.draft_lines.get((other_id, day))
        if line is not None and line.action == "book":
            remove_line(writes, planning, other_id, day)
            cleared.add(other_id)
    return cleared


def bulk(db: Session, child: Child, period: Period, unit_id: int, days: list[date], select_days: bool,
         now: datetime, mode: str = "book", ask_above: int | None = None, family_id: int | None = None) -> Change:
    """Select (or deselect) ``unit_id`` on every given day; only bookable days are selected.

    In "cancel" mode, selecting marks every cancellable booked day for cancellation. With ``ask_above``,
    a selection of more days than that writes nothing: its days come back in ``to_confirm``.
    """
    draft = draft_for(db, child, period, family_id or child.family_id)  # locked first, as for a click
    planning = load_planning(db, child, period, days, now, mode, draft=draft)
    if unit_id not in planning.weekdays:
        raise PlanningError("Cette unité n'existe pas dans cette période.")
    unit = planning.unit(unit_id)
    change = Change(units={unit_id})
    action = mode_action(mode)
    writes = []  # the lines cleared: deselected, or of units the selected ones exclude
    for day in days:
        line = planning.draft_lines.get((unit_id, day))
        if not select_days:
            if line is not None and line.action == action:
                remove_line(writes, planning, unit_id, day)
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
            change.units |= clear_excluded(writes, planning, unit, day)
            expected = planning.outcome(unit, day)
        new = DraftLine(draft_id=draft.id, unit_id=unit_id, day=day, action=action, expected=expected)
        db.add(new)
        planning.draft_lines[(unit_id, day)] = new
        change.days.add(day)
        change.selected += 1
    if select_days and ask_above is not None and change.selected > ask_above:
        db.rollback()  # nothing marked until the parent confirms
        change.to_confirm = sorted(change.days)
        return change
    in_one_trip(db, writes)
    change.total = bump_revision(db, draft, action)
    db.commit()
    n = change.selected
    if mode == "cancel":
        change.message = (f"{unit.label} : {count_words(n, 'jour sélectionné')} pour annulation." if select_days
                          else f"{unit.label} : {count_words(n, 'annulation retirée')}.")
    else:
        change.message = f"{unit.label} : {count_words(n, 'jour sélectionné' if select_days else 'jour désélectionné')}."
    skipped = [f"{k} {STATES[state][0].lower()}" for state, k in sorted(change.skipped.items()) if state != "closed"]
    if select_days and skipped:
        change.message += " Non sélectionnés : " + ", ".join(skipped) + "."
    return change


class OutsidePeriod(PlanningError):
    """A day posted outside the period's dates (a forged form): the view answers 400."""


@dataclass
class Click:
    """What a click on a cell did, and everything its fragment needs."""

    child: Ref
    period: OfferedPeriod
    unit: Unit
    day: date
    change: Change
    message: str
    ok: bool
    selected: int  # cases now ticked in this mode, for the counter


def click(db: Session, family_id: int, child_id: int, period_id: int, unit_id: int, day: date, now: datetime,
          mode: str = "book") -> Click | None:
    """A parent's click, from the ids the request carries: None when the child is not the family's or not
    enrolled where the period is (the view answers 404); a refused click comes back with its reason."""
    day_state = locked_day(db, family_id, child_id, period_id, day, now, mode)
    if day_state is None:
        return None
    plan, total = day_state
    if not plan.period.start_date <= day <= plan.period.end_date:
        db.rollback()
        raise OutsidePeriod("Ce jour n'est pas dans la période.")
    try:
        change = apply_click(db, plan, total, unit_id, day)
        message, ok = change.message, True
    except PlanningError as exc:
        db.rollback()
        change, message, ok = Change(days={day}, units={unit_id}, total=total), str(exc), False
        change.planning = load_planning(db, plan.child, plan.period, [day], now, mode, family_id=family_id)
    unit = next((u for u in change.planning.units if u.id == unit_id), None)
    if unit is None:
        return None  # not a unit of this period: as a forged id, 404
    return Click(plan.child, plan.period, unit, day, change, message, ok, change.total)
