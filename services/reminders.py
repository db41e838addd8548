"""Reminder mails of past-due invoices, on the régie's schedule (REMINDER_DAYS, e.g. 7 and 21 days
after the due date).

Run daily (``flask billing remind``, cron): an invoice left to pay gets the latest step of the schedule
it has reached, when it has not had that step or a later one, and no reminder in the last week. A paid,
cancelled or disputed invoice, or one whose direct debit is announced or sent, gets none. Each step is a
row (unique per invoice and step) written with the mail in one transaction: two runs at once, or a run
again the same day, send nothing twice.
"""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from db import upsert_insert
from models import DebitState, Invoice, InvoiceReminder
from services import outbox

MIN_GAP = timedelta(days=7)  # never more than one reminder a week


def schedule(config) -> list[int]:
    """The régie's steps, in days after the due date, from the setting (a list or "7,21")."""
    value = config.get("REMINDER_DAYS") or []
    if isinstance(value, str):
        value = [part for part in value.replace(";", ",").split(",") if part.strip()]
    return sorted({int(v) for v in value if 0 < int(v) <= 365})


def due(db: Session, today: date, steps: list[int]) -> list[tuple[Invoice, int]]:
    """(invoice, step) of every reminder to send ``today``."""
    if not steps:
        return []
    invoices = db.exec(select(Invoice).where(
        Invoice.cancelled == False, Invoice.disputed == False,  # noqa: E712
        Invoice.paid_cents < Invoice.total_cents, Invoice.due_on < today - timedelta(days=steps[0] - 1),
        Invoice.debit_state.not_in([DebitState.PLANNED, DebitState.SENT])).order_by(Invoice.due_on, Invoice.id)).all()
    if not invoices:
        return []
    sent = {invoice_id: (last_step, last_on) for invoice_id, last_step, last_on in db.exec(
        select(InvoiceReminder.invoice_id, func.max(InvoiceReminder.step), func.max(InvoiceReminder.sent_on))
        .where(InvoiceReminder.invoice_id.in_([i.id for i in invoices])).group_by(InvoiceReminder.invoice_id))}
    result = []
    for invoice in invoices:
        reached = [step for step in steps if today >= invoice.due_on + timedelta(days=step)]
        if not reached:
            continue
        last_step, last_on = sent.get(invoice.id, (0, None))
        if last_step >= reached[-1] or (last_on is not None and today - last_on < MIN_GAP):
            continue
        result.append((invoice, reached[-1]))
    return result


def send(db: Session, today: date, steps: list[int]) -> list[str]:
    """Queue today's reminders (committed); the numbers of the invoices reminded."""
    reminded = []
    for invoice, step in due(db, today, steps):
        written = db.execute(upsert_insert(db)(InvoiceReminder).values(invoice_id=invoice.id, step=step, sent_on=today)
                             .on_conflict_do_nothing(index_elements=["invoice_id", "step"])
                             .returning(InvoiceReminder.id)).scalar_one_or_none()
        if written is None:  # another run sent it
            continue
        outbox.queue_family(db, invoice.family_id, f"Rappel : facture {invoice.number} à régler", "invoice_reminder",
                            invoice=invoice, days_late=(today - invoice.due_on).days)
        reminded.append(invoice.number)
    db.commit()
    return reminded
