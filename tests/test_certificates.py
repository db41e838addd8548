"""Certificates: the yearly tax certificate (children under 6 on 1 January, money received that year,
meals excluded) and a child's attendance certificate, read back from their PDFs."""
import io
import re
from datetime import date, datetime, timezone

from pypdf import PdfReader
from sqlmodel import select

from models import Attendance, Child, Payment, Unit, User
from services import certificates
from tests.conftest import page_text
from tests.factories import AGENT, OTHER_PARENT, billed_month, child, school_period


def pdf_text(response) -> str:
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    return re.sub(r"\s+", " ", "".join(p.extract_text() for p in PdfReader(io.BytesIO(response.data)).pages))


def two_invoices(db):
    """Zoé's (born 2018) and Noé's (born 2021) périscolaire last month, each on its invoice: 6 lunches
    at 3,40 € and 6 evenings at 2,00 € (32,40 €). Zoé's paid 10 € by cheque, Noé's 16,20 € by cheque,
    plus 5 € paid the year before and a debit the bank rejected (neither counts this year)."""
    billed_month(db, "Zoé", cheque_cents=1000)
    noe_invoice = billed_month(db, "Noé", cheque_cents=1620)
    year = date.today().year
    db.add(Payment(invoice_id=noe_invoice.id, family_id=noe_invoice.family_id, amount_cents=500, method="cash",
                   status="paid", completed_at=datetime(year - 1, 12, 15, 10, tzinfo=timezone.utc)))
    db.add(Payment(invoice_id=noe_invoice.id, family_id=noe_invoice.family_id, amount_cents=1620,
                   method="direct-debit", status="refused", completed_at=datetime(year, 1, 10, tzinfo=timezone.utc)))
    db.commit()
    return noe_invoice


def test_the_tax_certificate_counts_what_was_paid_that_year_for_children_under_six(client, auth, db):
    two_invoices(db)
    year = date.today().year
    auth.login()
    page = page_text(client.get("/factures/attestations"))
    assert f"Attestation fiscale {year}" in page and f"Attestation fiscale {year - 1}" in page
    text = pdf_text(client.get(f"/factures/attestation-fiscale-{year}.pdf"))
    assert f"Attestation fiscale {year}" in text and "Famille Durand" in text
    # Noé's share of the 16,20 € received this year: his evenings (12,00 € of 32,40 €), meals excluded
    assert re.search(r"Noé Durand 24/08/2021 6,00\s?€", text)
    assert "Zoé" not in text  # 6 or more on 1 January
    assert re.search(r"Total : 6,00\s?€", text) and "Le régisseur" in text
    last_year = pdf_text(client.get(f"/factures/attestation-fiscale-{year - 1}.pdf"))
    assert re.search(r"Noé Durand 24/08/2021 1,85\s?€", last_year)  # 5 € × 12,00 / 32,40


def test_the_certificate_follows_the_meals_setting(app, db):
    two_invoices(db)
    family = child(db, "Noé").family
    with_meals = certificates.tax_certificate(db, family, date.today().year, [])
    assert [(c.first_name, cents) for c, cents in with_meals.rows] == [("Noé", 1620)]


def test_the_home_offers_last_years_certificate_and_nobody_else_gets_it(client, auth, db):
    two_invoices(db)
    year = date.today().year
    auth.login()
    assert f"Attestation fiscale {year - 1}" in page_text(client.get("/compte/"))
    assert client.get(f"/factures/attestation-fiscale-{year - 12}.pdf").status_code == 404  # no child under 6 then
    noe, period = child(db, "Noé"), school_period(db)
    auth.logout()
    auth.login(OTHER_PARENT)
    assert client.get(f"/factures/attestation-presence/{noe.id}/{period.id}.pdf").status_code == 404
    rayan_year = pdf_text(client.get(f"/factures/attestation-fiscale-{year - 2}.pdf"))
    assert "Famille Haddad" in rayan_year and "Noé" not in rayan_year and "Durand" not in rayan_year


def test_the_attendance_certificate_counts_days_present_and_money_paid(client, auth, db):
    invoice = two_invoices(db)
    noe, period = child(db, "Noé"), school_period(db)
    agent = db.exec(select(User).where(User.email == AGENT)).one()
    soir = db.exec(select(Unit).where(Unit.code == "accueil-soir")).one()
    cantine = db.exec(select(Unit).where(Unit.code == "cantine")).one()
    days = sorted({line.day for line in invoice.lines})
    for day in days[:3]:
        for unit in (soir, cantine):
            db.add(Attendance(child_id=noe.id, unit_id=unit.id, day=day, present=True, recorded_by_id=agent.id))
    db.add(Attendance(child_id=noe.id, unit_id=soir.id, day=days[3], present=False, recorded_by_id=agent.id))
    db.commit()
    auth.login()
    page = page_text(client.get("/factures/attestations"))
    assert f"Noé — {period.name}" in page
    text = pdf_text(client.get(f"/factures/attestation-presence/{noe.id}/{period.id}.pdf"))
    assert "Noé Durand" in text and "Nombre de jours de présence : 3" in text
    assert all(f"{d:%d/%m/%Y}" in text for d in days[:3]) and f"{days[3]:%d/%m/%Y}" not in text
    # 16,20 € by cheque and 5 € in cash, whatever the year; the rejected debit counts nothing
    assert re.search(r"Somme payée par la famille pour cet accueil : 21,20\s?€", text)
    assert db.exec(select(Child).where(Child.id == noe.id)).one().family_id == invoice.family_id
