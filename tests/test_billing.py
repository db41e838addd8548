"""Monthly billing (issue 5): brackets, surcharges, late cancellations, justified absences,
idempotence and numbering, also when two runs race (SQLite and PostgreSQL)."""
import threading
from datetime import date

import pytest
from sqlmodel import select

from db import writing_session
from models import Attendance, Family, Invoice, InvoiceLine, InvoiceState, Price, User
from services import billing, planning
from services.formatting import count_words, euros, parse_euros
from tests.factories import book, cancel, child, enroll_everyone, lines_of, paris, units

JULY = date(2027, 7, 1)
TODAY = date(2027, 8, 2)
BRACKETS = [(0, 450), (451, 800), (801, 1200), (1201, None)]
MATINEE = [350, 450, 550, 650]


@pytest.fixture
def priced(db, summer):
    """Prices per bracket for every unit of the summer period; 20 % surcharge without booking."""
    summer.surcharge_percent = 20
    db.add(summer)
    for code, unit in units(db).items():
        amounts = MATINEE if code == "matinee" else [29, 39, 49, 59] if code == "repas" else [800, 1000, 1200, 1400]
        for (low, high), cents in zip(BRACKETS, amounts):
            db.add(Price(period_id=summer.id, unit_id=unit.id, qf_min=low, qf_max=high, amount_cents=cents))
    db.commit()
    return summer


def durand(db):
    db.expire_all()
    return db.exec(select(Family).where(Family.name == "Durand")).one()


def run(app, month=JULY):
    return billing.run(app.extensions["ribambelle.engine"], month, TODAY, mail=False)


def test_price_follows_the_bracket_valid_on_the_booked_date(db, priced):
    pricing = billing.Pricing(db)
    fam = durand(db)
    u = units(db)["matinee"].id
    fam.qf, fam.qf_valid_until = 620, date(2027, 12, 31)
    assert pricing.price(fam, u, date(2027, 7, 20), "booking") == 450
    fam.qf = 450
    assert pricing.price(fam, u, date(2027, 7, 20), "booking") == 350
    fam.qf = 1201
    assert pricing.price(fam, u, date(2027, 7, 20), "booking") == 650
    fam.qf, fam.qf_valid_until = 300, date(2027, 7, 15)  # expired before the day: highest bracket
    assert pricing.price(fam, u, date(2027, 7, 20), "booking") == 650
    fam.qf = None
    assert pricing.price(fam, u, date(2027, 7, 20), "booking") == 650
    fam.qf, fam.qf_valid_until = 620, date(2027, 12, 31)
    assert pricing.price(fam, u, date(2027, 7, 20), "walk-in") == 540  # 450 + 20 %


def test_monthly_run_bills_accepted_days_once(app, db, priced):
    book(app, db, priced, "Zoé", "matinee", date(2027, 7, 20))
    book(app, db, priced, "Zoé", "repas", date(2027, 7, 20))
    report = run(app)
    assert len(report.invoices) == 1 and report.invoices[0] == "F-2027-07-00001"
    invoice = db.exec(select(Invoice).where(Invoice.month == JULY)).one()
    assert invoice.family_id == durand(db).id
    assert invoice.total_cents == 450 + 39  # Durand's QF 620: second bracket
    assert sorted(l.amount_cents for l in invoice.lines) == [39, 450]
    assert invoice.state(TODAY) == InvoiceState.DUE and invoice.due_on == date(2027, 9, 1)
    assert "1 facture(s)" in report.summary() and "4,89" in report.summary()
    # twice: nothing twice
    again = run(app)
    assert again.invoices == []
    assert len(db.exec(select(Invoice).where(Invoice.month == JULY)).all()) == 1
    # a day booked later goes on a new invoice, alone
    book(app, db, priced, "Zoé", "matinee", date(2027, 7, 21))
    third = run(app)
    assert third.invoices == ["F-2027-07-00002"]
    assert [l.day for l in db.exec(select(Invoice).where(Invoice.number == "F-2027-07-00002")).one().lines] == [date(2027, 7, 21)]


def test_late_cancellation_billed_justified_absence_not(app, db, priced):
    day = date(2027, 7, 20)
    book(app, db, priced, "Zoé", "matinee", day)
    book(app, db, priced, "Zoé", "repas", day)
    late = paris(2027, 7, 15)
    agent = db.exec(select(User).where(User.role == "agent")).one()
    first = cancel(app, db, priced, "Zoé", "matinee", day, now=late)
    with writing_session(app.extensions["ribambelle.engine"]) as w:
        planning.decide_line(w, agent.id, lines_of(db, first)[0].id, True, "", late)
    second = cancel(app, db, priced, "Zoé", "repas", day, now=late)
    with writing_session(app.extensions["ribambelle.engine"]) as w:
        planning.decide_line(w, agent.id, lines_of(db, second)[0].id, True, "", late, justified=True, justification="Certificat")
    run(app)
    invoice = db.exec(select(Invoice).where(Invoice.month == JULY)).one()
    assert [(l.kind, l.amount_cents) for l in invoice.lines] == [("late-cancel", 450)]


def test_day_attended_without_booking_is_billed_with_the_surcharge(app, db, priced):
    agent = db.exec(select(User).where(User.role == "agent")).one()
    db.add(Attendance(child_id=child(db).id, unit_id=units(db)["journee"].id, day=date(2027, 7, 22),
                      present=True, booked=False, recorded_by_id=agent.id))
    db.commit()
    run(app)
    line = db.exec(select(InvoiceLine).join(Invoice).where(Invoice.month == JULY)).one()
    assert line.kind == "walk-in" and line.amount_cents == 1200  # 1000 + 20 %


def test_cancelled_invoice_days_are_billed_again(app, db, priced):
    book(app, db, priced, "Zoé", "matinee", date(2027, 7, 20))
    run(app)
    invoice = db.exec(select(Invoice).where(Invoice.month == JULY)).one()
    with pytest.raises(billing.BillingError, match="motif"):
        billing.cancel_invoice(db, invoice, "")
    billing.cancel_invoice(db, invoice, "Erreur de tarif")
    assert run(app).invoices == ["F-2027-07-00002"]
    db.expire_all()
    assert db.exec(select(Invoice).where(Invoice.number == "F-2027-07-00001")).one().state(TODAY) == InvoiceState.CANCELLED


def test_two_runs_at_once_bill_each_family_once_with_numbers_in_sequence(app, db, priced):
    enroll_everyone(db, priced)
    for name in ("Zoé", "Noé", "Rayan"):
        book(app, db, priced, name, "matinee", date(2027, 7, 20))
    reports, errors, barrier = [], [], threading.Barrier(2)

    def go():
        try:
            barrier.wait()
            reports.append(run(app))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    invoices = db.exec(select(Invoice).where(Invoice.month == JULY).order_by(Invoice.number)).all()
    assert len(invoices) == 2  # Durand (Zoé and Noé together) and Haddad
    assert [i.number for i in invoices] == ["F-2027-07-00001", "F-2027-07-00002"]
    assert len(db.exec(select(InvoiceLine).join(Invoice).where(Invoice.month == JULY)).all()) == 3
    assert sorted(n for r in reports for n in r.invoices) == ["F-2027-07-00001", "F-2027-07-00002"]


def test_counter_payments_move_the_invoice_state(app, db, priced):
    book(app, db, priced, "Zoé", "repas", date(2027, 7, 20))  # 0,39 €
    run(app)
    invoice = db.exec(select(Invoice).where(Invoice.month == JULY)).one()
    agent = db.exec(select(User).where(User.role == "agent")).one()
    billing.record_counter_payment(db, agent.id, invoice, 10, "cash", "")
    assert invoice.state(TODAY) == InvoiceState.PARTIAL and invoice.left_cents == 29
    with pytest.raises(billing.BillingError, match="dépasse le reste à payer"):
        billing.record_counter_payment(db, agent.id, invoice, 30, "cheque", "n° 123")
    billing.record_counter_payment(db, agent.id, invoice, 29, "cheque", "n° 123")
    assert invoice.state(TODAY) == InvoiceState.PAID and invoice.paid_cents == 39
    with pytest.raises(billing.BillingError):
        billing.cancel_invoice(db, invoice, "Erreur")  # paid invoices are not cancelled


def test_past_due_unpaid_invoice_is_echue(app, db, priced):
    book(app, db, priced, "Zoé", "repas", date(2027, 7, 20))
    run(app)
    invoice = db.exec(select(Invoice).where(Invoice.month == JULY)).one()
    assert invoice.state(date(2027, 9, 2)) == InvoiceState.OVERDUE


@pytest.mark.parametrize("text,cents", [("12,50", 1250), ("0,29", 29), ("3", 300), ("1 234,5 €", 123450), ("7.05", 705),
                                        (euros(123450), 123450), ("1\u00a0234,50\u00a0€", 123450)])
def test_amounts_in_euros_become_integer_cents(text, cents):
    assert parse_euros(text) == cents  # what we write ourselves (« 1 234,50 € ») reads back


@pytest.mark.parametrize("text", ["", "douze", "1,234", "-3", "1e3", "12,50,3", "9" * 12, "1.234,50"])
def test_bad_amounts_are_not_amounts(text):
    assert parse_euros(text) is None


def test_month_argument(app):
    assert billing.parse_month("2027-07") == JULY
    with pytest.raises(billing.BillingError, match="AAAA-MM"):
        billing.parse_month("juillet")


def test_billing_cli_reports_what_it_did(app, db, priced, smtp):
    book(app, db, priced, "Zoé", "matinee", date(2027, 7, 20))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["billing", "run", "2027-07"])
    assert result.exit_code == 0, result.output
    assert "1 facture(s) émise(s)" in result.output and "F-2027-07-00001" in result.output
    assert "0 facture(s) émise(s)" in runner.invoke(args=["billing", "run", "2027-07"]).output
    assert runner.invoke(args=["billing", "run", "juillet"]).exit_code != 0
    mail = smtp.wait_for("zoe.parent@tilleuls.test")[0]
    assert "F-2027-07-00001" in mail["Subject"] and "4,50" in smtp.text(mail)


@pytest.mark.parametrize("count, words, said", [(1, "jour fermé", "1 jour fermé"), (0, "enfant inscrit", "0 enfant inscrit"),
                                                (3, "jour fermé", "3 jours fermés"), (2, "déjà inscrit", "2 déjà inscrits"),
                                                (2, "prix", "2 prix"), (3, "jour férié fermé", "3 jours fériés fermés")])
def test_counts_are_written_in_french(count, words, said):
    assert count_words(count, words) == said
