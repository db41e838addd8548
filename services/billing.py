"""Monthly billing: prices by quotient-familial bracket, one invoice per family and month.

Billed for a month: accepted bookings, days attended without a booking (with the period's
surcharge) and late cancellations an agent accepted without marking them justified. Running the
billing twice makes nothing twice: a day already on a (non-cancelled) invoice is never billed again,
and families are billed in batches, each in a transaction that locks them first, so two runs at once
cannot both bill one.
"""
from __future__ import annotations

import calendar
from collections import namedtuple
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import bindparam, exists, insert
from sqlmodel import Session, select

from db import writing_session
from models import (
    Attendance,
    Booking,
    Child,
    Credit,
    Family,
    Invoice,
    InvoiceLine,
    InvoiceState,
    Payment,
    PaymentStatus,
    Period,
    Price,
    Reservation,
    ReservationLine,
    Unit,
    utcnow,
)
from services import audit, direct_debit, outbox
from services.counters import next_values
from services.formatting import euros, month_year

# state -> (words shown, icon file): the one table of each.
INVOICE_STATES = {
    InvoiceState.DUE: ("À payer", "request"),
    InvoiceState.PAID: ("Payée", "booked"),
    InvoiceState.PARTIAL: ("Partiellement payée", "partial"),
    InvoiceState.OVERDUE: ("Échue", "refused"),
    InvoiceState.CANCELLED: ("Annulée", "closed"),
}
PAYMENT_STATES = {
    PaymentStatus.PENDING: ("En cours", "request"),
    PaymentStatus.PAID: ("Validé", "booked"),
    PaymentStatus.REFUSED: ("Refusé", "refused"),
    PaymentStatus.CANCELLED: ("Abandonné", "closed"),
    PaymentStatus.EXPIRED: ("Expiré", "locked"),
}
PAYMENT_METHODS = {
    "online": "Carte bancaire en ligne",
    "cash": "Espèces",
    "cheque": "Chèque",
    "cesu": "CESU",
    "transfer": "Virement",
    "direct-debit": "Prélèvement",
    "credit": "Trop-perçu reporté",
}
KIND_WORDS = {"booking": "Réservation", "walk-in": "Présence sans réservation", "late-cancel": "Annulation tardive"}

# An invoice's lines as it prints them (the page, the dialog, the PDF): each with its child's name and its
# unit's label, read in one statement built once (a PDF download reads them to tell whether the stored
# PDF is still the invoice's).
PrintedLine = namedtuple("PrintedLine", "day kind unit_price_cents amount_cents first_name last_name label")
PRINTED_LINES = (select(InvoiceLine.day, InvoiceLine.kind, InvoiceLine.unit_price_cents, InvoiceLine.amount_cents,
                        Child.first_name, Child.last_name, Unit.label)
                 .join(Child, Child.id == InvoiceLine.child_id).join(Unit, Unit.id == InvoiceLine.unit_id)
                 .where(InvoiceLine.invoice_id == bindparam("invoice")).order_by(InvoiceLine.id))


def printed_lines(db: Session, invoice_id: int) -> list[PrintedLine]:
    return [PrintedLine(*row) for row in db.connection().execute(PRINTED_LINES, {"invoice": invoice_id})]


class BillingError(Exception):
    """A French message for the agent or the parent."""


def month_bounds(month: date) -> tuple[date, date]:
    last = calendar.monthrange(month.year, month.month)[1]
    return date(month.year, month.month, 1), date(month.year, month.month, last)


def parse_month(value: str) -> date:
    """'2027-07' -> 1 July 2027; a French error otherwise."""
    try:
        year, month = (int(part) for part in value.split("-"))
        return date(year, month, 1)
    except (ValueError, OverflowError):
        raise BillingError(f"Mois invalide : « {value[:20]} » (attendu : AAAA-MM, par exemple 2027-07).") from None


@dataclass
class Item:
    child_id: int
    unit_id: int
    day: date
    kind: str


def _already_invoiced(child_col, unit_col, day_col, kind: str):
    return exists().where(
        InvoiceLine.child_id == child_col, InvoiceLine.unit_id == unit_col, InvoiceLine.day == day_col,
        InvoiceLine.kind == kind, InvoiceLine.invoice_id == Invoice.id, Invoice.cancelled.is_(False),
    )


def billable_items(db: Session, month: date, family_ids: list[int] | None = None) -> list[tuple[int, Item]]:
    """(family id, item) for everything of ``month`` not yet on an invoice (of these families only)."""
    first, last = month_bounds(month)
    items: list[tuple[int, Item]] = []
    # A booking is billed to the household that made it (shared custody: each at its own QF), a walk-in
    # to the child's file's household.
    q = (select(Booking.family_id, Booking.child_id, Booking.unit_id, Booking.day)
         .where(Booking.status == "accepted", Booking.day >= first, Booking.day <= last)
         .where(~_already_invoiced(Booking.child_id, Booking.unit_id, Booking.day, "booking")))
    if family_ids is not None:
        q = q.where(Booking.family_id.in_(family_ids))
    items += [(f, Item(c, u, d, "booking")) for f, c, u, d in db.exec(q)]
    q = (select(Child.family_id, Attendance.child_id, Attendance.unit_id, Attendance.day)
         .join(Child, Child.id == Attendance.child_id)
         .where(Attendance.booked.is_(False), Attendance.present.is_(True), Attendance.day >= first, Attendance.day <= last)
         .where(~_already_invoiced(Attendance.child_id, Attendance.unit_id, Attendance.day, "walk-in")))
    if family_ids is not None:
        q = q.where(Child.family_id.in_(family_ids))
    items += [(f, Item(c, u, d, "walk-in")) for f, c, u, d in db.exec(q)]
    # The state is checked in Python: on "state = 'accepted'" SQLite would walk every accepted line of
    # the town (the state index) for each family, instead of the family's few reservations.
    q = (select(Reservation.family_id, Reservation.child_id, ReservationLine.unit_id, ReservationLine.day,
                ReservationLine.state)
         .join(Reservation, Reservation.id == ReservationLine.reservation_id)
         .where(ReservationLine.action == "cancel", ReservationLine.billable.is_(True),
                ReservationLine.day >= first, ReservationLine.day <= last)
         .where(~_already_invoiced(Reservation.child_id, ReservationLine.unit_id, ReservationLine.day, "late-cancel")))
    if family_ids is not None:
        q = q.where(Reservation.family_id.in_(family_ids))
    items += [(f, Item(c, u, d, "late-cancel")) for f, c, u, d, state in db.exec(q) if state == "accepted"]
    items.sort(key=lambda fi: (fi[1].child_id, fi[1].day, fi[1].unit_id))
    return items


class Pricing:
    """Prices of the units, loaded once per run."""

    def __init__(self, db: Session):
        self.periods: dict[int, list[Period]] = {}
        for period in db.exec(select(Period)):
            self.periods.setdefault(period.establishment_id, []).append(period)
        self.prices: dict[tuple[int, int], list[Price]] = {}
        for price in db.exec(select(Price)):
            self.prices.setdefault((price.period_id, price.unit_id), []).append(price)
        for brackets in self.prices.values():
            brackets.sort(key=lambda p: p.qf_min)
        self.units = {u.id: u for u in db.exec(select(Unit))}

    def period_of(self, unit_id: int, day: date) -> Period | None:
        unit = self.units[unit_id]
        return next((p for p in self.periods.get(unit.establishment_id, [])
                     if p.start_date <= day <= p.end_date), None)

    def price(self, family: Family, unit_id: int, day: date, kind: str) -> int | None:
        """Integer cents for ``unit_id`` on ``day``: the family's bracket if its QF is valid that day,
        else the highest bracket; plus the period's surcharge for a day attended without booking."""
        period = self.period_of(unit_id, day)
        if period is None:
            return None
        # the period's, else the unit's; sorted by qf_min once, above
        brackets = self.prices.get((period.id, unit_id)) or self.prices.get((None, unit_id), [])
        if not brackets:
            return None
        qf_valid = family.qf is not None and family.qf_valid_until is not None and family.qf_valid_until >= day
        bracket = brackets[-1]
        if qf_valid:
            bracket = next((b for b in brackets if b.qf_min <= family.qf and (b.qf_max is None or family.qf <= b.qf_max)),
                           brackets[-1])
        amount = bracket.amount_cents
        if kind == "walk-in" and period.surcharge_percent:
            amount += (amount * period.surcharge_percent + 50) // 100  # rounded to the nearest cent
        return amount


@dataclass
class Report:
    month: date
    invoices: list[str] = field(default_factory=list)
    total_cents: int = 0
    lines: int = 0
    missing_prices: set[str] = field(default_factory=set)

    def summary(self) -> str:
        text = (f"Facturation de {month_year(self.month)} : {len(self.invoices)} facture(s) émise(s), "
                f"{self.lines} ligne(s), {euros(self.total_cents)}.")
        if self.missing_prices:
            text += " Sans tarif (non facturé) : " + ", ".join(sorted(self.missing_prices)) + "."
        return text


BATCH = 100  # families billed per transaction: a commit each, not one per family


def run(engine, month: date, today: date, due_days: int = 30, mail: bool = True, notice_days: int | None = None) -> Report:
    """Make the invoices of ``month``: one per family that has something new to bill.

    With ``notice_days`` (direct debit offered: ``direct_debit.notice_days``), the invoice of a family
    with an active mandate is announced for debit that many days after today, in its mail.

    Families are billed a hundred at a time, each batch in one transaction that first locks its
    families' rows (in id order, so two runs never wait on each other in a circle) and then reads
    what is left to bill: a second run at the same moment waits, then finds them billed.
    """
    report = Report(month=month)
    with Session(engine) as db:
        family_ids = sorted({f for f, _ in billable_items(db, month)})
        pricing = Pricing(db)
    for start in range(0, len(family_ids), BATCH):
        with writing_session(engine) as db:
            families = _lock_families(db, family_ids[start:start + BATCH])
            items: dict[int, list[Item]] = {}
            for family_id, item in billable_items(db, month, list(families)):
                items.setdefault(family_id, []).append(item)
            priced = [(families[family_id], lines, len(family_items))
                      for family_id, family_items in sorted(items.items())  # none left: another run billed them
                      if (lines := _priced_lines(pricing, families[family_id], family_items, report))]
            mandates = direct_debit.active_mandates(db, [f.id for f, _, _ in priced]) if notice_days is not None else {}
            credits = _open_credits(db, [f.id for f, _, _ in priced])
            made = _issue(db, month, today, due_days, priced, mandates, notice_days, credits)
            if mail:
                for (family, _, _), invoice in zip(priced, made):
                    _mail_issued(db, family, invoice, mandates.get(family.id))
            db.commit()
        for (_, _, billed), invoice in zip(priced, made):
            report.invoices.append(invoice.number)
            report.total_cents += invoice.total_cents
            report.lines += billed
    return report


def _open_credits(db: Session, family_ids: list[int]) -> dict[int, list[Credit]]:
    """The families' credits still to refund or carry, oldest first."""
    credits: dict[int, list[Credit]] = {}
    for credit in db.exec(select(Credit).where(Credit.family_id.in_(family_ids), Credit.status == "open")
                          .order_by(Credit.created_at, Credit.id)):
        credits.setdefault(credit.family_id, []).append(credit)
    return credits


def _lock_families(db: Session, family_ids: list[int]) -> dict[int, Family]:
    """The families' rows, locked until commit (PostgreSQL); SQLite's BEGIN IMMEDIATE already serializes."""
    query = select(Family).where(Family.id.in_(family_ids)).order_by(Family.id)
    if db.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return {family.id: family for family in db.exec(query)}


def _priced_lines(pricing: Pricing, family: Family, items: list[Item], report: Report) -> list[dict]:
    """The invoice lines of ``items`` at the family's prices; an item without a price is reported, not billed."""
    lines = []
    for item in items:
        amount = pricing.price(family, item.unit_id, item.day, item.kind)
        if amount is None:
            period = pricing.period_of(item.unit_id, item.day)
            report.missing_prices.add(f"{pricing.units[item.unit_id].label} ({period.name if period else 'hors période'})")
            continue
        lines.append(dict(child_id=item.child_id, unit_id=item.unit_id, day=item.day, kind=item.kind,
                          unit_price_cents=amount, amount_cents=amount))
    return lines


def _issue(db: Session, month: date, today: date, due_days: int,
           priced: list[tuple[Family, list[dict], int]], mandates: dict | None = None,
           notice_days: int | None = None, credits: dict | None = None) -> list[Invoice]:
    """The batch's invoices, numbered in order, in three statements: the numbers, the invoices, their lines
    (building an ORM object per line cost more than the SQL). A family's open credits are carried to its
    invoice first (each one whole, while it fits); what is left is announced for debit."""
    if not priced:
        return []
    numbers = next_values(db, f"invoice-{month.year}", len(priced))
    invoices = [Invoice(number=f"F-{month.year}-{month.month:02d}-{number:05d}", family_id=family.id, month=month,
                        issued_on=today, due_on=today + timedelta(days=due_days),
                        total_cents=sum(line["amount_cents"] for line in lines), created_at=utcnow())
                for number, (family, lines, _) in zip(numbers, priced)]
    carried = []
    for invoice in invoices:
        for credit in (credits or {}).get(invoice.family_id, []):
            if credit.amount_cents <= invoice.left_cents:
                invoice.paid_cents += credit.amount_cents
                carried.append((invoice, credit))
        if mandates and invoice.left_cents:
            direct_debit.announce(invoice, mandates.get(invoice.family_id), today, notice_days)
    rows = [invoice.model_dump(exclude={"id"}) for invoice in invoices]
    ids = db.execute(insert(Invoice).returning(Invoice.id, sort_by_parameter_order=True), rows).scalars().all()
    for invoice, invoice_id in zip(invoices, ids):
        invoice.id = invoice_id
    for invoice, credit in carried:
        db.add(Payment(invoice_id=invoice.id, family_id=invoice.family_id, amount_cents=credit.amount_cents,
                       method="credit", status=PaymentStatus.PAID, reference=f"Trop-perçu du {credit.created_at:%d/%m/%Y}",
                       completed_at=utcnow()))
        credit.status, credit.reference, credit.settled_at = "carried", invoice.number, utcnow()
        db.add(credit)
    db.execute(insert(InvoiceLine), [dict(line, invoice_id=invoice.id)
                                     for invoice, (_, lines, _) in zip(invoices, priced) for line in lines])
    return invoices


def invoices_to_follow(db: Session, show: str, today: date) -> list[Invoice]:
    """The régie's list, filtered in SQL: "impayees" (left to pay, due or not), "echues" (past due), else all."""
    query = select(Invoice).order_by(Invoice.due_on, Invoice.number)
    if show in ("impayees", "echues"):
        query = query.where(Invoice.cancelled == False, Invoice.paid_cents < Invoice.total_cents)  # noqa: E712
    if show == "echues":
        query = query.where(Invoice.due_on < today)
    return list(db.exec(query).all())


def _mail_issued(db: Session, family: Family, invoice: Invoice, mandate=None) -> None:
    """The invoice's mail; for a debit, it is the pre-notification: amount, date, mandate and creditor."""
    outbox.queue_family(db, family.id, f"Votre facture {invoice.number} est disponible", "invoice_issued",
                        invoice=invoice, mandate=mandate if invoice.debit_on else None,
                        masked_iban=direct_debit.masked(mandate.iban) if mandate else "")


# --- payments --------------------------------------------------------------------------------------


def apply_payment(db: Session, payment: Payment) -> None:
    """Add a validated counter payment to its invoice (the caller commits; never more than what is left)."""
    invoice = db.get(Invoice, payment.invoice_id)
    invoice.paid_cents += payment.amount_cents
    db.add(invoice)


def record_counter_payment(db: Session, agent_id: int, invoice: Invoice, amount_cents: int, method: str,
                           reference: str) -> Payment:
    """A payment at the counter (espèces, chèque, CESU, virement, prélèvement)."""
    if method not in PAYMENT_METHODS or method in ("online", "credit"):
        raise BillingError("Choisissez le moyen de paiement.")
    if invoice.cancelled:
        raise BillingError("Cette facture est annulée : aucun paiement ne peut y être enregistré.")
    if amount_cents <= 0:
        raise BillingError("Le montant doit être supérieur à 0,00 €.")
    if amount_cents > invoice.left_cents:
        raise BillingError(f"Le montant dépasse le reste à payer ({euros(invoice.left_cents)}).")
    payment = Payment(invoice_id=invoice.id, family_id=invoice.family_id, amount_cents=amount_cents, method=method,
                      status="paid", reference=reference, recorded_by_id=agent_id, completed_at=utcnow())
    db.add(payment)
    apply_payment(db, payment)
    db.commit()
    return payment


def set_disputed(db: Session, agent_id: int, invoice: Invoice, disputed: bool) -> None:
    """The family contests the invoice (no reminder while it does), or no longer; committed."""
    if invoice.disputed == disputed:
        return
    invoice.disputed = disputed
    db.add(invoice)
    audit.record(db, agent_id, "update", "invoice", invoice.id,
                 f"Facture {invoice.number} {'contestée' if disputed else 'plus contestée'}",
                 {"contestee": not disputed}, {"contestee": disputed}, family_id=invoice.family_id)
    db.commit()


def cancel_invoice(db: Session, invoice: Invoice, reason: str) -> None:
    """Cancel an invoice with a reason; its days can be billed again by the next run."""
    if invoice.cancelled:
        raise BillingError("Cette facture est déjà annulée.")
    if invoice.paid_cents:
        raise BillingError("Cette facture a reçu des paiements : elle ne peut pas être annulée.")
    if not reason:
        raise BillingError("Indiquez le motif de l'annulation.")
    invoice.cancelled, invoice.cancel_reason = True, reason
    db.add(invoice)
    db.commit()


