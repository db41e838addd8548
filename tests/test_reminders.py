"""The régie's month after billing: reminders of past-due invoices on its schedule (the day passed in),
disputes that stop them, and credits (trop-perçus) carried to the family's next invoice."""
from datetime import timedelta

import pytest
from sqlmodel import select

from models import AuditEntry, Credit, Invoice, InvoiceReminder, OutboxMail, Payment, utcnow
from services import billing, reminders
from tests.conftest import csrf_from, page_text
from tests.factories import AGENT, PARENT, billed_month, family_invoice

pytestmark = pytest.mark.usefixtures("billed")  # the Durands' invoice, 10 € of it paid by cheque

STEPS = [7, 21]


def reminder_mails(db, invoice):
    return db.exec(select(OutboxMail).where(OutboxMail.subject == f"Rappel : facture {invoice.number} à régler",
                                            OutboxMail.recipient == PARENT)).all()


def run(db, invoice, days_after_due):
    return reminders.send(db, invoice.due_on + timedelta(days=days_after_due), STEPS)


def test_reminders_go_at_their_dates_only(app, db):
    invoice = family_invoice(db)
    with app.app_context():
        assert run(db, invoice, 0) == [] and run(db, invoice, 6) == []  # not yet
        assert run(db, invoice, 7) == [invoice.number]
        assert run(db, invoice, 7) == [] and run(db, invoice, 8) == []  # once per step
        assert run(db, invoice, 20) == []
        assert run(db, invoice, 21) == [invoice.number]
        assert run(db, invoice, 60) == []  # the schedule is over
    mails = reminder_mails(db, invoice)
    assert len(mails) == 2
    left = f"{invoice.left_cents // 100},{invoice.left_cents % 100:02d}"
    assert left in mails[0].body_text and "passée depuis 7 jours" in mails[0].body_text
    assert [r.step for r in db.exec(select(InvoiceReminder).order_by(InvoiceReminder.step))] == STEPS


def test_never_more_than_one_reminder_a_week(app, db):
    invoice = family_invoice(db)
    with app.app_context():
        assert run(db, invoice, 18) == [invoice.number]  # the first run came late: step 7
        assert run(db, invoice, 21) == []  # step 21 is due, but the last reminder is 3 days old
        assert run(db, invoice, 25) == [invoice.number]
    assert len(reminder_mails(db, invoice)) == 2


def test_a_late_first_run_sends_the_latest_step_only(app, db):
    invoice = family_invoice(db)
    with app.app_context():
        assert run(db, invoice, 30) == [invoice.number]
        assert run(db, invoice, 45) == []  # step 7 is not sent after step 21
    assert [r.step for r in db.exec(select(InvoiceReminder))] == [21]


def test_no_reminder_once_paid_or_disputed(app, client, auth, db):
    invoice = family_invoice(db)
    auth.login(AGENT)
    page = page_text(client.get(f"/agent/factures/{invoice.id}"))
    assert "Marquer la facture contestée" in page
    client.post(f"/agent/factures/{invoice.id}", data={"csrf_token": csrf_from(page), "action": "contestee"})
    db.expire_all()
    assert db.get(Invoice, invoice.id).disputed
    assert db.exec(select(AuditEntry).where(AuditEntry.target == "invoice", AuditEntry.target_id == invoice.id)).one()
    with app.app_context():
        assert run(db, invoice, 7) == []
    page = page_text(client.get(f"/agent/factures/{invoice.id}"))
    client.post(f"/agent/factures/{invoice.id}", data={"csrf_token": csrf_from(page), "action": "non-contestee"})
    with app.app_context():
        assert run(db, invoice, 7) == [invoice.number]
    page = page_text(client.get(f"/agent/factures/{invoice.id}"))
    left = f"{invoice.left_cents // 100},{invoice.left_cents % 100:02d}"
    client.post(f"/agent/factures/{invoice.id}", data={"csrf_token": csrf_from(page), "action": "payer",
                                                       "montant": left, "moyen": "cash", "reference": ""})
    db.expire_all()
    assert family_invoice(db).left_cents == 0
    with app.app_context():
        assert run(db, invoice, 21) == []
    assert len(reminder_mails(db, invoice)) == 1


def test_the_schedule_setting_and_the_command(app, db):
    assert reminders.schedule({"REMINDER_DAYS": "21, 7"}) == [7, 21]
    assert reminders.schedule({"REMINDER_DAYS": []}) == []
    invoice = family_invoice(db)
    runner = app.test_cli_runner()
    day = (invoice.due_on + timedelta(days=7)).isoformat()
    result = runner.invoke(args=["billing", "remind", "--today", day])
    assert result.exit_code == 0 and "1 rappel(s) envoyé(s)." in result.output and invoice.number in result.output
    again = runner.invoke(args=["billing", "remind", "--today", day])
    assert "0 rappel(s) envoyé(s)." in again.output
    wrong = runner.invoke(args=["billing", "remind", "--today", "demain"])
    assert wrong.exit_code != 0 and "Date invalide" in wrong.output


def test_an_open_credit_is_carried_to_the_next_invoice(app, client, auth, db):
    first = family_invoice(db)
    surplus = Payment(invoice_id=first.id, family_id=first.family_id, amount_cents=700, method="transfer",
                      status="paid", completed_at=utcnow())
    db.add(surplus)
    db.flush()
    db.add(Credit(family_id=first.family_id, payment_id=surplus.id, invoice_id=first.id, amount_cents=700))
    db.commit()
    second = billed_month(db, cheque_cents=0, months_ago=2)
    assert second.id != first.id and second.paid_cents == 700
    credit = db.exec(select(Credit)).one()
    assert credit.status == "carried" and credit.reference == second.number
    carried = db.exec(select(Payment).where(Payment.invoice_id == second.id)).one()
    assert carried.method == "credit" and carried.amount_cents == 700
    auth.login()
    home = page_text(client.get("/compte/"))
    assert f"Déduit d'une facture ({second.number})" in home and "Trop-perçu reporté" in home
    third_run = billing.run(db.get_bind(), second.month, second.issued_on, mail=False)
    assert third_run.invoices == []  # nothing carried twice
    db.expire_all()
    assert db.get(Invoice, second.id).paid_cents == 700
