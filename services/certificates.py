"""The certificates parents ask the régie for: the yearly tax certificate of childcare costs
(attestation fiscale) and a child's attendance certificate for a period (attestation de présence).

Money counted is money received: the payments completed in the calendar year (Paris time), each
shared among its invoice's lines in proportion to their amounts, and never more than the invoice's
total (a surplus is a credit until it is carried to an invoice: it counts then). A rejected debit, a
refused or abandoned online payment count nothing.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time

from sqlalchemy import func, or_
from sqlmodel import Session, select

from models import Attendance, Booking, Child, Family, Invoice, InvoiceLine, Payment, PaymentStatus, Period, Unit
from services.family import household_children, in_household
from services.formatting import PARIS

TAX_AGE = 6  # the tax credit for childcare is for children under 6 on 1 January of the year


def under_six(child: Child, year: int) -> bool:
    """Under 6 on 1 January of ``year`` (born that year included)."""
    return child.birth_date is not None and date(year - TAX_AGE, 1, 1) < child.birth_date <= date(year, 12, 31)


def _shares(db: Session, invoice_paid: dict[int, int], counted) -> dict[int, int]:
    """Per child, the cents of ``invoice_paid`` (invoice id -> cents received) that went to the lines
    ``counted(line, unit)`` accepts, each invoice's money shared by line amount (rounded per child)."""
    if not invoice_paid:
        return {}
    totals = dict(db.exec(select(Invoice.id, Invoice.total_cents).where(Invoice.id.in_(list(invoice_paid)))).all())
    by_invoice: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for line, unit in db.exec(select(InvoiceLine, Unit).join(Unit, Unit.id == InvoiceLine.unit_id)
                              .where(InvoiceLine.invoice_id.in_(list(invoice_paid)))):
        if counted(line, unit):
            by_invoice[line.invoice_id][line.child_id] += line.amount_cents
    result: dict[int, int] = defaultdict(int)
    for invoice_id, children in by_invoice.items():
        total = totals[invoice_id]
        paid = min(invoice_paid[invoice_id], total)
        for child_id, cents in children.items():
            result[child_id] += (paid * cents * 2 + total) // (2 * total) if total else 0  # rounded half up
    return dict(result)


def _received(db: Session, *where) -> dict[int, int]:
    """Invoice id -> cents received by the payments that ``where`` selects (validated ones only)."""
    return {invoice_id: cents or 0 for invoice_id, cents in db.exec(
        select(Payment.invoice_id, func.sum(Payment.amount_cents))
        .where(Payment.status == PaymentStatus.PAID, *where).group_by(Payment.invoice_id)).all()}


def _in_year(year: int):
    start, end = (datetime.combine(date(y, 1, 1), time(), PARIS) for y in (year, year + 1))
    when = func.coalesce(Payment.completed_at, Payment.created_at)
    return (when >= start) & (when < end)


@dataclass
class TaxCertificate:
    year: int
    family: Family
    rows: list[tuple[Child, int]] = field(default_factory=list)  # each child under 6, and the cents paid

    @property
    def total_cents(self) -> int:
        return sum(cents for _, cents in self.rows)


def tax_certificate(db: Session, family: Family, year: int, excluded_units: list[str]) -> TaxCertificate:
    """What the family paid in ``year`` for the childcare of its children under 6 on 1 January,
    meals (the unit codes of ``excluded_units``) excluded."""
    children = [c for c in family.children if under_six(c, year)]
    certificate = TaxCertificate(year, family)
    if not children:
        return certificate
    eligible = {c.id for c in children}
    shares = _shares(db, _received(db, Payment.family_id == family.id, _in_year(year)),
                     lambda line, unit: line.child_id in eligible and unit.code not in excluded_units)
    certificate.rows = [(child, shares.get(child.id, 0)) for child in children]
    return certificate


def tax_years(children: Iterable, today: date) -> list[int]:
    """The years a tax certificate can be asked for (the last three ended, and this one), newest first,
    when one of a family's ``children`` (anything with a ``birth_date``) was under 6 then."""
    return [year for year in range(today.year, today.year - 4, -1) if any(under_six(c, year) for c in children)]


@dataclass
class PresenceCertificate:
    child: Child
    period: Period
    days: list[date]  # the days the child was there (ticked present on the attendance list)
    paid_cents: int  # received for the child's days of the period


def presence_certificate(db: Session, child: Child, period: Period, family_id: int | None = None) -> PresenceCertificate:
    """The days ``child`` attended in ``period`` (any unit of its establishment) and what was paid for them,
    by the household ``family_id`` (the child's file's by default; shared custody: each its own days)."""
    family_id = family_id or child.family_id
    unit_ids = set(db.exec(select(Unit.id).where(Unit.establishment_id == period.establishment_id)).all())
    booked_by = (select(Booking.family_id).where(Booking.child_id == Attendance.child_id, Booking.unit_id == Attendance.unit_id,
                                                 Booking.day == Attendance.day).scalar_subquery())
    # a day booked by the household, or, for the child's file's household, a walk-in
    household_day = (booked_by == family_id) if family_id != child.family_id else or_(booked_by == family_id,
                                                                                     booked_by.is_(None))
    days = sorted(set(db.exec(select(Attendance.day).where(
        Attendance.child_id == child.id, Attendance.present == True, Attendance.unit_id.in_(unit_ids),  # noqa: E712
        Attendance.day >= period.start_date, Attendance.day <= period.end_date, household_day)).all()))
    invoice_ids = set(db.exec(select(InvoiceLine.invoice_id).join(Invoice, Invoice.id == InvoiceLine.invoice_id).where(
        InvoiceLine.child_id == child.id, InvoiceLine.unit_id.in_(unit_ids), Invoice.family_id == family_id,
        InvoiceLine.day >= period.start_date, InvoiceLine.day <= period.end_date)).all())
    received = _received(db, Payment.invoice_id.in_(invoice_ids)) if invoice_ids else {}
    shares = _shares(db, received, lambda line, unit: line.child_id == child.id and unit.id in unit_ids
                     and period.start_date <= line.day <= period.end_date)
    return PresenceCertificate(child, period, days, shares.get(child.id, 0))


def presence_choices(db: Session, family_id: int) -> list[tuple[Child, Period]]:
    """(child, period) the family can ask an attendance certificate for: a day attended or billed there."""
    pairs = set()
    for child_id, unit_id, day in db.exec(
            select(Attendance.child_id, Attendance.unit_id, Attendance.day).join(Child, Child.id == Attendance.child_id)
            .where(in_household(family_id), Attendance.present == True)  # noqa: E712
            .union(select(InvoiceLine.child_id, InvoiceLine.unit_id, InvoiceLine.day)
                   .join(Invoice, Invoice.id == InvoiceLine.invoice_id).where(Invoice.family_id == family_id))).all():
        pairs.add((child_id, unit_id, day))
    if not pairs:
        return []
    children = household_children(db, family_id)
    establishments = dict(db.exec(select(Unit.id, Unit.establishment_id).where(Unit.id.in_({u for _, u, _ in pairs}))).all())
    periods = db.exec(select(Period).where(Period.establishment_id.in_(set(establishments.values())))
                      .order_by(Period.start_date)).all()
    found = set()
    for child_id, unit_id, day in pairs:
        for period in periods:
            if period.establishment_id == establishments[unit_id] and period.start_date <= day <= period.end_date:
                found.add((child_id, period.id))
    by_id = {p.id: p for p in periods}
    return sorted(((children[c], by_id[p]) for c, p in found if c in children),
                  key=lambda cp: (cp[0].first_name, cp[1].start_date))
