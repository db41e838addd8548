"""Attendance lists ("listes de présence"): who is expected per unit on a day, and who came."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlmodel import Session, select

from models import (
    Attendance,
    Booking,
    Child,
    ChildHousehold,
    Enrollment,
    Family,
    Guardian,
    Period,
    PeriodUnit,
    Unit,
    utcnow,
)
from services import csvfile


@dataclass
class Row:
    child: Child
    status: str  # accepted, request, waitlist or "walk-in" (came without a booking)
    cancel_pending: bool
    present: bool | None
    phones: str
    pickup: str = ""  # who may pick the child up: the persons of the household whose day it is

    @property
    def expected(self) -> bool:
        return self.status in ("accepted", "walk-in")


@dataclass
class UnitList:
    unit: Unit
    rows: list[Row] = field(default_factory=list)

    @property
    def expected(self) -> int:
        return sum(1 for r in self.rows if r.expected)


def sheet(db: Session, establishment_id: int, day: date) -> list[UnitList]:
    """Per unit offered that day: the children booked (accepted first), with what the staff need."""
    period = db.exec(select(Period).where(Period.establishment_id == establishment_id,
                                          Period.start_date <= day, Period.end_date >= day)).first()
    if period is None:
        return []
    units = db.exec(select(Unit).join(PeriodUnit, PeriodUnit.unit_id == Unit.id)
                    .where(PeriodUnit.period_id == period.id, PeriodUnit.weekdays.contains(str(day.weekday())))
                    .order_by(Unit.position)).all()
    unit_ids = [u.id for u in units]
    bookings = db.exec(select(Booking, Child).join(Child, Child.id == Booking.child_id)
                       .where(Booking.unit_id.in_(unit_ids), Booking.day == day)).all()
    marks = {(a.child_id, a.unit_id): a for a in db.exec(
        select(Attendance).where(Attendance.unit_id.in_(unit_ids), Attendance.day == day))}
    # A child in shared custody is picked up, and its parents called, by the household that booked the day.
    family_ids = {b.family_id for b, _ in bookings} | {db.get(Child, a.child_id).family_id for a in marks.values()}
    phones = _phones(db, family_ids)
    second = {(h.child_id, h.family_id): h.pickup_persons for h in db.exec(
        select(ChildHousehold).where(ChildHousehold.child_id.in_({b.child_id for b, _ in bookings})))}
    lists = {u.id: UnitList(u) for u in units}
    seen = set()
    for booking, child in bookings:
        mark = marks.get((child.id, booking.unit_id))
        pickup = second.get((child.id, booking.family_id), child.pickup_persons)
        lists[booking.unit_id].rows.append(Row(child, booking.status, booking.cancel_line_id is not None,
                                               mark.present if mark else None, phones.get(booking.family_id, ""),
                                               pickup))
        seen.add((child.id, booking.unit_id))
    for (child_id, unit_id), mark in marks.items():
        if (child_id, unit_id) not in seen and not mark.booked:
            child = db.get(Child, child_id)
            lists[unit_id].rows.append(Row(child, "walk-in", False, mark.present, phones.get(child.family_id, ""),
                                           child.pickup_persons))
    order = {"accepted": 0, "walk-in": 1, "request": 2, "waitlist": 3}
    for unit_list in lists.values():
        unit_list.rows.sort(key=lambda r: (order[r.status], r.child.last_name, r.child.first_name))
    return list(lists.values())


def _phones(db: Session, family_ids: set[int]) -> dict[int, str]:
    result: dict[int, list[str]] = {}
    for g in db.exec(select(Guardian).where(Guardian.family_id.in_(family_ids)).order_by(Guardian.position)):
        if g.phone_mobile:
            result.setdefault(g.family_id, []).append(f"{g.first_name} {g.phone_mobile}")
    families = db.exec(select(Family).where(Family.id.in_(family_ids))).all()
    for fam in families:
        if fam.phone_home:
            result.setdefault(fam.id, []).append(f"domicile {fam.phone_home}")
    return {k: ", ".join(v) for k, v in result.items()}


def record(db: Session, agent_id: int, day: date, marks: dict[tuple[int, int], bool], walk_in: bool = False) -> int:
    """Store presence (True) or absence (False) per (child, unit); returns how many were stored."""
    existing = {(a.child_id, a.unit_id): a for a in db.exec(
        select(Attendance).where(Attendance.day == day, Attendance.unit_id.in_({u for _, u in marks})))}
    for (child_id, unit_id), present in marks.items():
        row = existing.get((child_id, unit_id)) or Attendance(child_id=child_id, unit_id=unit_id, day=day,
                                                              present=present, booked=not walk_in,
                                                              recorded_by_id=agent_id)
        row.present, row.recorded_by_id, row.recorded_at = present, agent_id, utcnow()
        db.add(row)
    db.commit()
    return len(marks)


def enrolled_children(db: Session, establishment_id: int) -> list[Child]:
    return list(db.exec(select(Child).join(Enrollment, Enrollment.child_id == Child.id)
                        .where(Enrollment.establishment_id == establishment_id)
                        .order_by(Child.last_name, Child.first_name)))


STATUS_WORDS = {"accepted": "Réservé", "walk-in": "Venu sans réservation", "request": "Demande en attente",
                "waitlist": "Liste d'attente"}


def to_csv(lists: list[UnitList], day: date) -> str:
    """The sheet as CSV (services/csvfile: semicolons, every cell escaped)."""
    header = ["Date", "Unité", "Nom", "Prénom", "Classe", "Statut", "Annulation demandée", "Présence",
              "Allergies", "PAI", "Informations médicales", "Personnes autorisées", "Téléphones"]
    rows = (
        [day.strftime("%d/%m/%Y"), unit_list.unit.label, r.child.last_name, r.child.first_name, r.child.school_class,
         STATUS_WORDS[r.status], "oui" if r.cancel_pending else "",
         {True: "présent", False: "absent", None: ""}[r.present], r.child.allergies,
         (r.child.pai_details or "oui") if r.child.has_pai else "", r.child.medical_notes,
         r.pickup.replace("\n", " / "), r.phones]
        for unit_list in lists for r in unit_list.rows
    )
    return csvfile.to_csv(header, rows)
