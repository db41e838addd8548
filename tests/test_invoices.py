"""Block "Mes factures & paiements" (guide sections 10-11) and the régie's billing pages."""
import io
import re

import pytest
from pypdf import PdfReader
from sqlmodel import Session, select

from models import Invoice, InvoiceLine, InvoicePdf, Payment
from services import pdf, ratelimit
from tests.conftest import csrf_from, page_text
from tests.factories import family_invoice

pytestmark = pytest.mark.usefixtures("billed")  # every test here starts with an invoice to pay


def test_family_sees_invoices_payments_and_legends(client, auth, db):
    invoice = family_invoice(db)
    auth.login()
    page = page_text(client.get("/compte/"))
    assert invoice.number in page and "Partiellement payée" in page
    assert "Chèque" in page and "Validé" in page  # the counter payment
    for words in ("À payer", "Payée", "Échue", "Annulée", "En cours", "Refusé", "Expiré"):
        assert words in page  # the legends


def test_invoice_detail_as_dialog_and_as_page(client, auth, db):
    invoice = family_invoice(db)
    auth.login()
    dialog = page_text(client.get(f"/factures/{invoice.id}", headers={"HX-Request": "true"}))
    assert dialog.lstrip().startswith("<dialog") and "<html" not in dialog
    for words in ("Détail de la facture", "Total", "Déjà payé", "Reste à payer", "À payer avant le", "Cantine", "Accueil du soir"):
        assert words in dialog
    assert "10,00" in dialog  # paid so far
    lines = db.exec(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id)).all()
    assert f"Détail de la facture ({len(lines)} lignes)" in dialog
    assert dialog.count('data-label="Enfant">Zoé</td>') == len(lines)  # each line names its child
    assert len(lines) == 12  # six days, lunch and evening (billed_month)
    assert dialog.count('data-label="Prestation">Cantine<') == dialog.count('data-label="Prestation">Accueil du soir<') == 6
    page = page_text(client.get(f"/factures/{invoice.id}"))
    assert "<html" in page and "Télécharger en PDF" in page


def test_invoice_pdf_total_matches(client, auth, db):
    invoice = family_invoice(db)
    auth.login()
    response = client.get(f"/factures/{invoice.id}.pdf")
    assert response.mimetype == "application/pdf"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(response.data)).pages)
    assert invoice.number in text and "Famille Durand" in text
    total = f"{invoice.total_cents // 100},{invoice.total_cents % 100:02d}"
    assert re.search(rf"Total\s*:\s*{total}", text)
    assert "Ville de Démonstration" in text and "Comment payer" in text
    assert text.count("Zoé Durand") == 12 and text.count("Cantine") == 6 and text.count("Accueil du soir") == 6


def test_invoice_pdf_is_made_once_and_again_only_when_what_it_shows_changes(client, auth, db, monkeypatch):
    invoice = family_invoice(db)
    auth.login()
    made = []
    real = pdf.html_to_pdf
    monkeypatch.setattr(pdf, "html_to_pdf", lambda html: made.append(html) or real(html))
    first = client.get(f"/factures/{invoice.id}.pdf")
    again = client.get(f"/factures/{invoice.id}.pdf")
    assert first.status_code == again.status_code == 200
    assert again.data == first.data and len(made) == 1  # the second is the stored file
    assert db.exec(select(InvoicePdf.content).where(InvoicePdf.invoice_id == invoice.id)).one() == first.data
    invoice.paid_cents += 500  # a payment: the PDF says so on the next download
    db.add(invoice)
    db.commit()
    paid = f"{invoice.paid_cents // 100},{invoice.paid_cents % 100:02d}"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(client.get(f"/factures/{invoice.id}.pdf").data)).pages)
    assert re.search(rf"Déjà payé\s*:\s*{paid}", text) and len(made) == 2
    assert len(db.exec(select(InvoicePdf).where(InvoicePdf.invoice_id == invoice.id)).all()) == 1  # replaced


def test_another_familys_invoice_is_not_found(client, auth, db):
    invoice = family_invoice(db)
    auth.login("rayan.parent@tilleuls.test")
    assert client.get(f"/factures/{invoice.id}").status_code == 404
    assert client.get(f"/factures/{invoice.id}.pdf").status_code == 404
    assert client.get(f"/factures/{invoice.id}", headers={"HX-Request": "true"}).status_code == 404


def test_regie_runs_billing_records_a_payment_and_cancels(client, auth, db, smtp):
    auth.login("agent@tilleuls.test")
    page = page_text(client.get("/agent/facturation"))
    invoice = family_invoice(db)
    assert invoice.number in page and "Lancer la facturation" in page
    token = csrf_from(page)
    bad = client.post("/agent/facturation", data={"csrf_token": token, "mois": "n'importe"}, follow_redirects=True)
    assert "Mois invalide" in page_text(bad)
    again = client.post("/agent/facturation", data={"csrf_token": token, "mois": invoice.month.strftime("%Y-%m")}, follow_redirects=True)
    assert "0 facture(s) émise(s)" in page_text(again)  # that month is billed already

    url = f"/agent/factures/{invoice.id}"
    over = client.post(url, data={"csrf_token": token, "action": "payer", "montant": "9999", "moyen": "cash"}, follow_redirects=True)
    assert "dépasse le reste à payer" in page_text(over)
    wrong = client.post(url, data={"csrf_token": token, "action": "payer", "montant": "dix euros", "moyen": "cash"}, follow_redirects=True)
    assert "Montant invalide" in page_text(wrong)
    left = invoice.left_cents
    client.post(url, data={"csrf_token": token, "action": "payer", "montant": f"{left // 100},{left % 100:02d}", "moyen": "cesu", "reference": "CESU 42"})
    db.expire_all()
    assert family_invoice(db).left_cents == 0
    assert db.exec(select(Payment).where(Payment.method == "cesu")).one().amount_cents == left
    refused = client.post(url, data={"csrf_token": token, "action": "annuler", "motif": "Erreur"}, follow_redirects=True)
    assert "ne peut pas être annulée" in page_text(refused)


def test_billing_pages_are_staff_only(client, auth, db):
    invoice = family_invoice(db)
    auth.login()
    assert client.get("/agent/facturation").status_code == 403
    assert client.get(f"/agent/factures/{invoice.id}").status_code == 403


@pytest.mark.parametrize("app_settings", [{"BASE_URL": "https://famille.ville.test"}])
def test_invoice_pdf_names_the_portal_by_its_public_address(client, auth, db):
    """Asked through the server's own name, the PDF still gives parents the portal's address (BASE_URL)."""
    invoice = family_invoice(db)
    auth.login()
    response = client.get(f"/factures/{invoice.id}.pdf")
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(response.data)).pages)
    assert "https://famille.ville.test/" in text and "localhost" not in text


def test_a_first_download_stores_its_pdf_after_another_request_wrote(app, db):
    """Parents downloading their new invoices at once (SQLite): a download that has read, then lays its
    PDF out while another request writes, still stores it (its read ended before its write)."""
    invoice = family_invoice(db)
    engine = app.extensions["ribambelle.engine"]
    download = Session(engine)  # a GET's session: its transaction begins with its first read
    download.exec(select(Invoice.id)).all()
    other = Session(engine)
    ratelimit.hit(other, "un-autre-parent", "10/60")  # another request writes and commits meanwhile
    other.close()
    content = pdf.invoice_pdf(download, invoice.id, "<p>Facture</p>")
    download.close()
    assert content.startswith(b"%PDF")
    assert db.exec(select(InvoicePdf.content).where(InvoicePdf.invoice_id == invoice.id)).one() == content
