"""The town's configuration without HTTP: units (exclusions, prices per QF bracket) and the QF brackets.

Each function takes the session, the admin's id and plain values, writes the journal and commits; the
admin views parse the forms, call one of these, and render.
"""
from __future__ import annotations

import re
import unicodedata

from sqlmodel import Session, select

from models import Child, Enrollment, Establishment, Price, QfBracket, Unit, UnitExclusion
from services import audit

UNIT_FIELDS = ("label", "short_label", "position", "capacity", "starts_at", "ends_at")
MAX_BRACKETS = 12


class ConfigurationError(Exception):
    """A configuration the rules refuse; the message is French and shown as is."""


def town_brackets(db: Session) -> list[QfBracket]:
    return list(db.exec(select(QfBracket).order_by(QfBracket.qf_min)).all())


def bracket_label(b: QfBracket) -> str:
    return f"QF de {b.qf_min} à {b.qf_max} €" if b.qf_max is not None else f"QF à partir de {b.qf_min} €"


def unit_exclusions(db: Session, unit_ids: list[int]) -> dict[int, set[int]]:
    """For each unit, the units that cannot be booked with it on one day (both ways)."""
    result: dict[int, set[int]] = {u: set() for u in unit_ids}
    for ex in db.exec(select(UnitExclusion).where(UnitExclusion.unit_id.in_(unit_ids))):
        result.setdefault(ex.unit_id, set()).add(ex.excluded_unit_id)
        result.setdefault(ex.excluded_unit_id, set()).add(ex.unit_id)
    return result


def unit_code(label: str, taken: set[str]) -> str:
    """A short ASCII code from the label (« Après-midi » -> "apres-midi"), unique in the establishment."""
    text = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode().lower()
    base = re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:25] or "unite"
    code, n = base, 2
    while code in taken:
        code, n = f"{base}-{n}", n + 1
    return code


def unit_prices(db: Session, unit_id: int) -> dict[tuple[int, int | None], Price]:
    """The unit's own prices (for every period), by bracket bounds."""
    return {(p.qf_min, p.qf_max): p for p in db.exec(select(Price).where(Price.unit_id == unit_id,
                                                                        Price.period_id.is_(None)))}


def save_unit(db: Session, admin_id: int, establishment: Establishment, unit: Unit | None, fields: dict,
              excluded: set[int], prices: dict[int, int]) -> Unit:
    """Create (``unit`` None) or change a unit: its fields, the units it excludes (ids of the same
    establishment), its price per bracket (bracket id -> cents; a bracket left out has no price)."""
    siblings = {u.id: u for u in db.exec(select(Unit).where(Unit.establishment_id == establishment.id))
                if unit is None or u.id != unit.id}
    if not excluded <= set(siblings):
        raise ConfigurationError("Une unité exclue n'est pas de cet établissement.")
    brackets = {b.id: b for b in town_brackets(db)}
    if not set(prices) <= set(brackets):
        raise ConfigurationError("Une tranche de quotient familial n'existe plus : rechargez la page.")
    before_excluded = unit_exclusions(db, [unit.id])[unit.id] if unit else set()
    saved = unit_prices(db, unit.id) if unit else {}
    before = {}
    if unit is not None:
        before = {**audit.snapshot(unit, UNIT_FIELDS), "exclut": sorted(before_excluded),
                  "tarifs": {bracket_label(b): saved[(b.qf_min, b.qf_max)].amount_cents
                             for b in brackets.values() if (b.qf_min, b.qf_max) in saved}}
    else:
        unit = Unit(establishment_id=establishment.id, label="", position=0, capacity=0,
                    code=unit_code(fields["label"], {u.code for u in siblings.values()}))
    for name in UNIT_FIELDS:
        setattr(unit, name, fields.get(name, getattr(unit, name)))  # the hours may be left out
    db.add(unit)
    db.flush()
    for other in before_excluded - excluded:
        for a, b in ((unit.id, other), (other, unit.id)):
            row = db.get(UnitExclusion, (a, b))
            if row:
                db.delete(row)
    for other in excluded - before_excluded:
        db.add(UnitExclusion(unit_id=unit.id, excluded_unit_id=other))
    for row in saved.values():
        db.delete(row)
    after_prices = {}
    for bracket_id, cents in prices.items():
        b = brackets[bracket_id]
        after_prices[bracket_label(b)] = cents
        db.add(Price(unit_id=unit.id, qf_min=b.qf_min, qf_max=b.qf_max, amount_cents=cents))
    after = {**audit.snapshot(unit, UNIT_FIELDS), "exclut": sorted(excluded), "tarifs": after_prices}
    audit.record(db, admin_id, "update" if before else "create", "unit", unit.id,
                 f"Unité {'modifiée' if before else 'créée'} : {unit.label} ({establishment.name})", before, after)
    db.commit()
    return unit


def save_brackets(db: Session, admin_id: int, ceilings: list[str]) -> list[QfBracket]:
    """The town's brackets from their ceilings as typed (« 450 », « 800 », « 1200 »: four brackets)."""
    typed = [c.strip() for c in ceilings if c and c.strip()][:MAX_BRACKETS]
    if not all(c.isdigit() and 0 < int(c) < 100000 for c in typed):
        raise ConfigurationError("Chaque plafond est un nombre entier d'euros, entre 1 et 99 999.")
    bounds = [int(c) for c in typed]
    if bounds != sorted(set(bounds)):
        raise ConfigurationError("Les plafonds doivent aller en croissant, sans doublon (par exemple 450, 800, 1200).")
    current = town_brackets(db)
    before = [bracket_label(b) for b in current]
    for b in current:
        db.delete(b)
    db.flush()
    new = [QfBracket(qf_min=low, qf_max=high) for low, high in zip([0] + [c + 1 for c in bounds], bounds + [None])]
    db.add_all(new)
    after = [bracket_label(b) for b in new]
    if after != before:
        audit.record(db, admin_id, "update", "qf_brackets", 0, "Tranches de quotient familial modifiées",
                     {"tranches": before}, {"tranches": after})
    db.commit()
    return new


def enrol(db: Session, admin_id: int, establishment: Establishment, children: list[Child]) -> list[Child]:
    """Let these children book the establishment; returns those newly enrolled (the others already were)."""
    enrolled = set(db.exec(select(Enrollment.child_id).where(Enrollment.establishment_id == establishment.id)).all())
    added = [c for c in children if c.id not in enrolled]
    for child in added:
        db.add(Enrollment(child_id=child.id, establishment_id=establishment.id))
        audit.record(db, admin_id, "create", "enrollment", child.id,
                     f"Inscription : {child.full_name} ({establishment.name})", family_id=child.family_id)
    db.commit()
    return added


def withdraw(db: Session, admin_id: int, establishment: Establishment, child: Child) -> bool:
    """The child can no longer book there (what is booked stays); False when it was not enrolled."""
    row = db.exec(select(Enrollment).where(Enrollment.child_id == child.id,
                                           Enrollment.establishment_id == establishment.id)).first()
    if row is None:
        return False
    db.delete(row)
    audit.record(db, admin_id, "delete", "enrollment", row.id,
                 f"Inscription retirée : {child.full_name} ({establishment.name})", family_id=child.family_id)
    db.commit()
    return True


def school_class(db: Session, school: str, name: str) -> list[Child]:
    """Every child of a class (« École Jules-Ferry », « CE2 »)."""
    if not school or not name:
        return []
    return list(db.exec(select(Child).where(Child.school == school, Child.school_class == name)).all())
