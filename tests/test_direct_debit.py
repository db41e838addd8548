"""Prélèvement automatique: IBANs checked with schwifty, mandates signed online or on paper, invoices
announced for debit, the SEPA pain.008 file (validated against its XSD, read back, made once), rejects
by hand and from the bank's pain.002 report, revocation."""
import io
import os
import threading
from datetime import timedelta

import pytest
import sepaxml
import xmlschema
from lxml import etree
from playwright.sync_api import expect
from pypdf import PdfReader
from sqlmodel import select

from db import writing_session
from models import AuditEntry, DebitBatch, DebitLine, Family, Invoice, Mandate, OutboxMail, Payment, User, utcnow
from services import debit_file, direct_debit, payments
from services.calendar import paris_today
from tests.conftest import csrf_from, page_text, require_axe
from tests.factories import AGENT, OTHER_PARENT, PARENT, billed_month, login, parent_id, violations

CREDITOR = {"SEPA_CREDITOR_ID": "FR72ZZZ123456", "SEPA_CREDITOR_NAME": "Régie enfance de Saint-Essai",
            "SEPA_CREDITOR_IBAN": "FR76 3000 1000 0000 0640 0000 084", "SEPA_CREDITOR_BIC": "BDFEFRPPCCT"}
PAIN_008 = xmlschema.XMLSchema(os.path.join(os.path.dirname(sepaxml.__file__), "schemas", "pain.008.001.02.xsd"))
NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.008.001.02"}
IBAN_LA_POSTE = "FR76 2004 1000 0101 0050 5000 106"
IBAN_BNP = "FR76 3000 4000 0100 0100 0123 486"


@pytest.fixture
def app_settings():
    return dict(CREDITOR)


def today():
    return paris_today(utcnow())


def sign_online(client, auth, holder="Claire Durand", iban=IBAN_LA_POSTE, consent=True):
    auth.login()
    page = page_text(client.get("/factures/prelevement"))
    data = {"csrf_token": csrf_from(page), "mandat-holder": holder, "mandat-iban": iban}
    if consent:
        data["mandat-consent"] = "y"
    return client.post("/factures/prelevement", data=data)


def durand_mandate(db) -> Mandate:
    db.expire_all()
    return db.exec(select(Mandate).where(Mandate.family_id == family_invoice_family(db))).one()


def family_invoice_family(db) -> int:
    return db.get(User, parent_id(db)).family_id


# --- IBAN and ICS ------------------------------------------------------------------------------------


def _iban_with(bban: str, country: str = "FR") -> str:
    """An IBAN whose own check digits are right around ``bban`` (whatever the national key says)."""
    numeric = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    return f"{country}{98 - int(numeric) % 97:02d}{bban}"


@pytest.mark.parametrize("typed, words", [
    ("", "Saisissez l'IBAN"),
    ("FR76 3000 6000 0112 3456 7890 188", "clé de contrôle ne correspond pas"),  # one digit wrong
    ("FR76 3000 6000 0112 3456 7890 1", "pas la bonne longueur"),
    ("BR18 0036 0305 0000 1000 9795 493C 1", "hors de la zone SEPA (Brésil)"),
    ("US64 SVBK US6S 3300 9588 79", "États-Unis, hors de la zone SEPA"),
    (_iban_with("30006000011234567890188"), "n'est pas valide"),  # the IBAN's digits right, the RIB key wrong
    ("FR76" + "1" * 60, "trop long"),
])
def test_an_iban_the_bank_would_refuse_is_refused_in_french(typed, words):
    with pytest.raises(direct_debit.DebitError) as refused:
        direct_debit.read_iban(typed)
    assert words in str(refused.value)


def test_sepa_ibans_are_read_with_their_bank():
    french = direct_debit.read_iban("fr76 2004 1000 0101 0050 5000 106")
    assert french.compact == "FR7620041000010100505000106" and str(french.bic) == "PSSTFRPP"
    german = direct_debit.read_iban("DE89 3704 0044 0532 0130 00")
    assert german.country_code == "DE" and german.in_sepa_zone
    assert direct_debit.masked(french.compact) == "FR76 •••• •••• 0106"


def test_the_creditor_identifier_is_checked():
    assert direct_debit.valid_ics("FR72ZZZ123456") and direct_debit.valid_ics("fr72 zzz 123456")
    assert not direct_debit.valid_ics("FR73ZZZ123456") and not direct_debit.valid_ics("FR72ZZZ")


def test_the_portal_refuses_to_start_with_a_wrong_creditor_identifier(make_app):
    with pytest.raises(RuntimeError, match="SEPA_CREDITOR_ID"):
        make_app(**{**CREDITOR, "SEPA_CREDITOR_ID": "FR00ZZZ123456"})
    with pytest.raises(RuntimeError, match="SEPA_CREDITOR_IBAN"):
        make_app(**{**CREDITOR, "SEPA_CREDITOR_IBAN": "FR76 3000 6000 0112 3456 7890 188"})


# --- the mandate -------------------------------------------------------------------------------------


def test_a_parent_signs_the_mandate_online(client, auth, db, app):
    auth.login()
    page = page_text(client.get("/compte/"))
    assert "Prélèvement automatique" in page
    form = page_text(client.get("/factures/prelevement"))
    for words in ("Mandat de prélèvement SEPA", "FR72ZZZ123456", "Régie enfance de Saint-Essai",
                  "vous autorisez Régie enfance de Saint-Essai", "Signer le mandat"):
        assert words in form
    response = sign_online(client, auth)
    assert response.status_code == 302
    mandate = durand_mandate(db)
    assert mandate.iban == "FR7620041000010100505000106" and mandate.bic == "PSSTFRPP"
    assert mandate.signed_by_id == parent_id(db) and mandate.signed_on == today() and mandate.status == "active"
    assert mandate.rum.startswith(f"RBL{today():%Y}-") and mandate.first_debit
    page = page_text(client.get("/factures/prelevement"))
    assert mandate.rum in page and "FR76 •••• •••• 0106" in page and "LA BANQUE POSTALE" in page
    assert "Changer de compte" in page and "Arrêter le prélèvement" in page
    mails = db.exec(select(OutboxMail).where(OutboxMail.subject == "Votre mandat de prélèvement SEPA")).all()
    assert {m.recipient for m in mails} >= {PARENT} and all(mandate.rum in m.body_text for m in mails)
    assert all("FR72ZZZ123456" in m.body_text and "7620041000010100505000106" not in m.body_text for m in mails)


def test_no_mandate_without_consent_or_with_a_bad_iban_and_what_was_typed_stays(client, auth, db):
    response = sign_online(client, auth, consent=False)
    page = page_text(response)
    assert response.status_code == 200 and "Cochez cette case pour signer le mandat" in page
    assert 'value="Claire Durand"' in page and 'value="FR76 2004 1000 0101 0050 5000 106"' in page
    page = page_text(sign_online(client, auth, iban="FR76 2004 1000 0101 0050 5000 107"))
    assert "clé de contrôle ne correspond pas" in page
    page = page_text(sign_online(client, auth, holder="x" * 5_000_000))
    assert "Le nom du titulaire du compte a au plus 70 caractères." in page
    assert db.exec(select(Mandate)).all() == []


def test_a_second_mandate_is_refused_a_new_iban_amends_and_stopping_is_one_button(client, auth, db):
    sign_online(client, auth)
    first = durand_mandate(db)
    page = page_text(client.get("/factures/prelevement"))
    response = client.post("/factures/prelevement", data={"csrf_token": csrf_from(page), "compte-holder": "Claire Durand",
                                                          "compte-iban": IBAN_BNP})
    assert response.status_code == 302
    amended = durand_mandate(db)
    assert amended.id == first.id and amended.rum == first.rum  # same mandate, same RUM
    assert amended.iban == "FR7630004000010001000123486" and amended.previous_iban == "FR7620041000010100505000106"
    assert amended.first_debit and amended.bank_name == "BNP PARIBAS"
    page = page_text(client.get("/factures/prelevement"))
    client.post("/factures/prelevement/arret", data={"csrf_token": csrf_from(page)})
    db.expire_all()
    assert db.get(Mandate, first.id).status == "revoked"
    page = page_text(client.get("/factures/prelevement"))
    assert "Signer le mandat" in page  # a new one can be signed


def test_direct_debit_is_not_offered_when_the_town_has_not_set_it(app, client, auth, db):
    app.config["SEPA_CREDITOR_ID"] = None  # the town has no creditor identifier
    auth.login()
    assert "Prélèvement automatique" not in page_text(client.get("/compte/"))
    assert client.get("/factures/prelevement").status_code == 404
    auth.logout()
    auth.login(AGENT)
    assert client.get("/regie/prelevements").status_code == 404
    assert "mandat papier" not in page_text(client.get(f"/agent/familles/{family_invoice_family(db)}"))


def test_another_family_never_sees_the_mandate(client, auth, db):
    sign_online(client, auth)
    mandate = durand_mandate(db)
    auth.logout()
    auth.login(OTHER_PARENT)
    page = page_text(client.get("/factures/prelevement"))
    assert mandate.rum not in page and "Signer le mandat" in page
    assert client.get("/regie/prelevements").status_code == 403


def test_an_agent_records_a_paper_mandate(client, auth, db):
    family_id = family_invoice_family(db)
    auth.login(AGENT)
    page = page_text(client.get(f"/agent/familles/{family_id}"))
    assert "Enregistrer un mandat papier" in page
    response = client.post(f"/regie/familles/{family_id}/mandat", data={
        "csrf_token": csrf_from(page), "papier-holder": "Claire Durand", "papier-iban": IBAN_BNP,
        "papier-signed_on": (today() - timedelta(days=3)).isoformat()})
    assert response.status_code == 302
    mandate = durand_mandate(db)
    agent = db.exec(select(User).where(User.email == AGENT)).one()
    assert mandate.recorded_by_id == agent.id and mandate.signed_by_id is None
    assert mandate.signed_on == today() - timedelta(days=3)
    entry = db.exec(select(AuditEntry).where(AuditEntry.target == "mandate")).one()
    assert mandate.rum in entry.summary and entry.family_id == family_id
    page = page_text(client.get(f"/agent/familles/{family_id}"))
    assert mandate.rum in page and "papier" in page


# --- billing, the file, rejects ---------------------------------------------------------------------


def debited_invoice(client, auth, db, months_ago=1) -> Invoice:
    """The Durands' mandate signed online, then a month billed with its mail: the invoice to debit."""
    if not db.exec(select(Mandate)).first():
        sign_online(client, auth)
        auth.logout()
    with client.raw.application.app_context():  # the invoice mails are written
        return billed_month(db, cheque_cents=0, notice_days=14, mail=True, months_ago=months_ago)


def build(client, auth, day):
    auth.login(AGENT)
    page = page_text(client.get("/regie/prelevements"))
    return client.post("/regie/prelevements", data={"csrf_token": csrf_from(page), "date": day.isoformat()})


def test_the_invoice_announces_its_debit_and_is_not_paid_online(client, auth, db):
    invoice = debited_invoice(client, auth, db)
    assert invoice.debit_state == "planned" and invoice.debit_on == today() + timedelta(days=14)
    mail = db.exec(select(OutboxMail).where(OutboxMail.subject == f"Votre facture {invoice.number} est disponible",
                                            OutboxMail.recipient == PARENT)).one()
    amount = f"{invoice.total_cents // 100},{invoice.total_cents % 100:02d}"
    assert f"{amount}" in mail.body_text and "seront prélevés le" in mail.body_text
    assert durand_mandate(db).rum in mail.body_text and "FR76 •••• •••• 0106" in mail.body_text
    assert payments.payable_problem(invoice, today()).startswith("Cette facture sera payée par prélèvement automatique")
    auth.login()
    home = page_text(client.get("/compte/"))
    assert f"Prélèvement le {invoice.debit_on:%d/%m/%Y}" in home
    detail = page_text(client.get(f"/factures/{invoice.id}"))
    assert "Prélevé le" in detail and "Payer en ligne" not in detail
    printed = "".join(p.extract_text() for p in PdfReader(io.BytesIO(client.get(f"/factures/{invoice.id}.pdf").data)).pages)
    assert f"seront prélevés le {invoice.debit_on:%d/%m/%Y}" in printed and "Comment payer" not in printed


def read_back(xml: bytes):
    PAIN_008.validate(xml.decode())  # the published ISO 20022 schema
    return etree.fromstring(xml)


def test_the_direct_debit_file_is_valid_sepa_and_made_once(client, auth, db):
    invoice = debited_invoice(client, auth, db)
    mandate = durand_mandate(db)
    response = build(client, auth, invoice.debit_on)
    assert response.status_code == 302
    batch = db.exec(select(DebitBatch)).one()
    download = client.get(f"/regie/prelevements/{batch.id}.xml")
    assert download.headers["Content-Disposition"].startswith("attachment;")
    root = read_back(download.data)
    assert root.findtext(".//p:GrpHdr/p:NbOfTxs", namespaces=NS) == "1"
    assert root.findtext(".//p:GrpHdr/p:CtrlSum", namespaces=NS) == f"{invoice.total_cents / 100:.2f}"
    assert root.findtext(".//p:CdtrSchmeId/p:Id/p:PrvtId/p:Othr/p:Id", namespaces=NS) == "FR72ZZZ123456"
    assert root.findtext(".//p:SeqTp", namespaces=NS) == "FRST"
    assert root.findtext(".//p:ReqdColltnDt", namespaces=NS) == invoice.debit_on.isoformat()
    tx = root.find(".//p:DrctDbtTxInf", namespaces=NS)
    assert tx.findtext("p:PmtId/p:EndToEndId", namespaces=NS) == invoice.number
    assert tx.findtext(".//p:MndtId", namespaces=NS) == mandate.rum
    assert tx.findtext(".//p:DtOfSgntr", namespaces=NS) == mandate.signed_on.isoformat()
    assert tx.findtext(".//p:DbtrAcct/p:Id/p:IBAN", namespaces=NS) == mandate.iban
    assert tx.find("p:InstdAmt", namespaces=NS).text == f"{invoice.total_cents / 100:.2f}"
    db.expire_all()
    paid = db.get(Invoice, invoice.id)
    assert paid.paid_cents == paid.total_cents and paid.debit_state == "sent"
    payment = db.exec(select(Payment).where(Payment.invoice_id == invoice.id)).one()
    assert payment.method == "direct-debit" and payment.status == "paid" and payment.reference == mandate.rum
    assert not db.get(Mandate, mandate.id).first_debit  # the next one is recurrent
    again = build(client, auth, invoice.debit_on)  # the same date again: the same file, nothing twice
    assert again.headers["Location"].endswith(f"/regie/prelevements/{batch.id}")
    assert len(db.exec(select(DebitLine)).all()) == 1 and len(db.exec(select(Payment)).all()) == 1
    page = page_text(client.get(f"/regie/prelevements/{batch.id}"))
    assert invoice.number in page and "Enregistrer le rejet" in page


def test_a_file_for_a_date_with_nothing_to_debit_or_in_the_past_is_refused(client, auth, db):
    debited_invoice(client, auth, db)
    response = build(client, auth, today())
    assert "doit être après aujourd'hui" in page_text(client.get("/regie/prelevements"))
    assert response.status_code == 302 and db.exec(select(DebitBatch)).all() == []
    build(client, auth, today() + timedelta(days=2))  # before the announced date
    assert "Aucune facture n'est à prélever" in page_text(client.get("/regie/prelevements"))
    assert db.exec(select(DebitBatch)).all() == []


def reject_by_hand(client, db, line, code="AM04"):
    page = page_text(client.get(f"/regie/prelevements/{line.batch_id}"))
    return client.post(f"/regie/prelevements/lignes/{line.id}/rejet", data={"csrf_token": csrf_from(page), "motif": code})


def test_a_rejected_debit_makes_the_invoice_payable_again_and_tells_the_family(client, auth, db):
    invoice = debited_invoice(client, auth, db)
    build(client, auth, invoice.debit_on)
    line = db.exec(select(DebitLine)).one()
    reject_by_hand(client, db, line)
    db.expire_all()
    again = db.get(Invoice, invoice.id)
    assert again.paid_cents == 0 and again.debit_state == "rejected" and again.due_on >= today() + timedelta(days=15)
    assert payments.payable_problem(again, today()) is None  # online payment possible again
    assert db.get(Payment, line.payment_id).status == "refused"
    mandate = durand_mandate(db)
    assert mandate.status == "active" and mandate.first_debit  # a first debit returned: FRST again
    mail = db.exec(select(OutboxMail).where(OutboxMail.subject == f"Prélèvement rejeté : facture {invoice.number}",
                                            OutboxMail.recipient == PARENT)).one()
    assert "provision insuffisante" in mail.body_text and "Payer en ligne" in mail.body_text
    assert "suspendu" not in mail.body_text
    response = reject_by_hand(client, db, line)  # twice: refused, nothing changes
    assert response.status_code == 302
    assert len(db.exec(select(OutboxMail).where(OutboxMail.subject.startswith("Prélèvement rejeté"))).all()) == 2  # both guardians, once
    auth.logout()
    auth.login()
    assert "Payer en ligne" in page_text(client.get(f"/factures/{invoice.id}"))


def test_a_second_reject_in_a_row_suspends_the_mandate(client, auth, db):
    first = debited_invoice(client, auth, db, months_ago=2)
    build(client, auth, first.debit_on)
    reject_by_hand(client, db, db.exec(select(DebitLine)).one())
    auth.logout()
    second = debited_invoice(client, auth, db, months_ago=1)
    assert second.debit_state == "planned"
    build(client, auth, second.debit_on)
    line = db.exec(select(DebitLine).where(DebitLine.invoice_id == second.id)).one()
    assert line.sequence == "FRST"
    reject_by_hand(client, db, line, "AC04")
    assert durand_mandate(db).status == "suspended"
    mail = db.exec(select(OutboxMail).where(OutboxMail.subject == f"Prélèvement rejeté : facture {second.number}",
                                            OutboxMail.recipient == PARENT)).one()
    assert "suspendu" in mail.body_text and "compte clôturé" in mail.body_text
    assert direct_debit.active_mandates(db, [second.family_id]) == {}  # the next invoices are not debited


PAIN_002 = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.03">
 <CstmrPmtStsRpt>
  <GrpHdr><MsgId>REJ-0001</MsgId><CreDtTm>2027-07-20T08:00:00</CreDtTm></GrpHdr>
  <OrgnlGrpInfAndSts><OrgnlMsgId>{msg}</OrgnlMsgId><OrgnlMsgNmId>pain.008.001.02</OrgnlMsgNmId></OrgnlGrpInfAndSts>
  <OrgnlPmtInfAndSts><OrgnlPmtInfId>X</OrgnlPmtInfId>
   <TxInfAndSts><OrgnlEndToEndId>{e2e}</OrgnlEndToEndId><TxSts>RJCT</TxSts>
    <StsRsnInf><Rsn><Cd>{code}</Cd></Rsn></StsRsnInf></TxInfAndSts>
   <TxInfAndSts><OrgnlEndToEndId>F-1999-01-99999</OrgnlEndToEndId><TxSts>RJCT</TxSts>
    <StsRsnInf><Rsn><Cd>AC01</Cd></Rsn></StsRsnInf></TxInfAndSts>
  </OrgnlPmtInfAndSts>
 </CstmrPmtStsRpt>
</Document>"""


def test_the_banks_reject_report_is_imported_once(client, auth, db):
    invoice = debited_invoice(client, auth, db)
    build(client, auth, invoice.debit_on)
    batch = db.exec(select(DebitBatch)).one()
    report = PAIN_002.format(msg=batch.message_id, e2e=invoice.number, code="MS02").encode()
    page = page_text(client.get("/regie/prelevements"))

    def upload(content):
        return client.post("/regie/prelevements/rejets", data={"csrf_token": csrf_from(page),
                                                                "releve": (io.BytesIO(content), "rejets.xml")},
                           content_type="multipart/form-data", follow_redirects=True)

    done = page_text(upload(report))
    assert "1 rejet(s) enregistré(s)" in done and "F-1999-01-99999" in done
    line = db.exec(select(DebitLine)).one()
    db.refresh(line)
    assert line.reject_code == "MS02" and line.rejected_at is not None
    again = page_text(upload(report))
    assert "0 rejet(s) enregistré(s), 1 déjà enregistré(s)" in again
    assert len(db.exec(select(OutboxMail).where(OutboxMail.subject.startswith("Prélèvement rejeté"),
                                                OutboxMail.recipient == PARENT)).all()) == 1
    hostile = (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
               b'<Document><CstmrPmtStsRpt><TxInfAndSts><OrgnlEndToEndId>&x;</OrgnlEndToEndId><TxSts>RJCT</TxSts>'
               b'</TxInfAndSts></CstmrPmtStsRpt></Document>')
    answer = page_text(upload(hostile))
    assert "root:" not in answer
    assert "n'est pas un relevé" in page_text(upload(b"<html><body>pas un relev\xc3\xa9</body></html>"))
    assert "pas un fichier XML lisible" in page_text(upload(b"\x89PNG\r\n"))


def test_stopping_the_mandate_makes_announced_invoices_payable_online(client, auth, db):
    invoice = debited_invoice(client, auth, db)
    auth.login()
    page = page_text(client.get("/factures/prelevement"))
    assert f"le {invoice.debit_on:%d/%m/%Y} — facture {invoice.number}" in page
    client.post("/factures/prelevement/arret", data={"csrf_token": csrf_from(page)})
    db.expire_all()
    again = db.get(Invoice, invoice.id)
    assert again.debit_state == "" and again.debit_on is None
    assert payments.payable_problem(again, today()) is None
    mails = db.exec(select(OutboxMail).where(OutboxMail.subject == "Votre prélèvement automatique est arrêté")).all()
    assert PARENT in {m.recipient for m in mails}


def test_in_chromium_at_360px_a_parent_opts_in_sees_the_debit_and_downloads_the_certificate(browser, live_server, db):
    require_axe()
    context = browser.new_context(base_url=live_server, locale="fr-FR", viewport={"width": 360, "height": 740},
)
    page = context.new_page()
    page.set_default_timeout(10000)
    login(page)
    page.get_by_role("link", name="Prélèvement automatique").click()
    expect(page.get_by_role("heading", name="Mandat de prélèvement SEPA")).to_be_visible()
    page.get_by_label("Titulaire du compte").fill("Anne Durand")
    page.get_by_label("IBAN").fill("FR76 2004 1000 0101 0050 5000 107")  # one digit wrong
    page.get_by_role("button", name="Signer le mandat").click()
    expect(page.get_by_text("clé de contrôle ne correspond pas")).to_be_visible()
    assert page.get_by_label("Titulaire du compte").input_value() == "Anne Durand"  # kept
    page.get_by_label("IBAN").fill(IBAN_LA_POSTE)
    page.get_by_label("J'accepte le mandat de prélèvement SEPA ci-dessus").check()
    assert violations(page) == []
    page.get_by_role("button", name="Signer le mandat").click()
    expect(page.get_by_text("Votre mandat de prélèvement est signé")).to_be_visible()
    rum = durand_mandate(db).rum
    expect(page.get_by_text(rum)).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360  # nothing wider than the phone
    invoice = billed_month(db, "Noé", cheque_cents=0, notice_days=14)  # the next billing announces the debit
    page.goto("/compte/")
    expect(page.get_by_text(f"Prélèvement le {invoice.debit_on:%d/%m/%Y}")).to_be_visible()
    page.get_by_role("link", name="Attestations fiscales et de présence").click()
    assert violations(page) == []
    link = page.get_by_role("link", name=f"Attestation fiscale {today().year}")
    certificate = page.request.get(link.get_attribute("href"))  # the PDF, with the parent's session
    assert certificate.headers["content-type"] == "application/pdf"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(certificate.body())).pages)
    assert f"Attestation fiscale {today().year}" in text and "Noé Durand" in text
    context.close()


def test_the_demo_creditor_of_make_run_is_one_the_portal_starts_with(make_app):
    makefile = open(os.path.join(os.path.dirname(__file__), "..", "Makefile")).read()
    line = makefile.split("DEMO_SEPA :=", 1)[1].split("\n\n", 1)[0].replace("\\\n", " ")
    settings = dict(part.removeprefix("FLASK_").split("=", 1) for part in line.split())
    app = make_app(**settings)
    assert direct_debit.creditor(app.config).ics == "FR72ZZZ123456"


def test_two_agents_building_the_same_file_at_once_make_one(app, client, auth, db):
    invoice = debited_invoice(client, auth, db)
    agent = db.exec(select(User).where(User.email == AGENT)).one()
    cred = direct_debit.Creditor("Régie", "FR72ZZZ123456", "FR7630001000000006400000084", "BDFEFRPPCCT")
    made, errors, start = [], [], threading.Barrier(2)

    def build_one():
        try:
            with writing_session(app.extensions["ribambelle.engine"]) as w:  # the app's: BEGIN IMMEDIATE
                start.wait()
                made.append(debit_file.build_file(w, cred, agent.id, invoice.debit_on, today()).id)
        except Exception as error:  # noqa: BLE001  (the assertion below says which)
            errors.append(repr(error))

    threads = [threading.Thread(target=build_one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and len(made) == 2 and made[0] == made[1]
    assert len(db.exec(select(DebitBatch)).all()) == 1 and len(db.exec(select(DebitLine)).all()) == 1
    db.expire_all()
    assert db.get(Invoice, invoice.id).paid_cents == invoice.total_cents  # paid once


def test_a_second_live_mandate_written_at_the_same_moment_is_refused_by_the_database(app, db, monkeypatch):
    family_id = family_invoice_family(db)
    user = db.get(User, parent_id(db))
    family = db.get(Family, family_id)
    with app.test_request_context():  # its confirmation mail is written
        direct_debit.sign(db, family, user, "Anne Durand", IBAN_LA_POSTE, True, today())
        # the other guardian's request read "no mandate yet" just before the first one was written
        monkeypatch.setattr(direct_debit, "live_mandate", lambda db, family_id: None)
        with pytest.raises(direct_debit.DebitError, match="déjà un mandat"):
            direct_debit.sign(db, family, user, "Paul Durand", IBAN_BNP, True, today())
    assert len(db.exec(select(Mandate)).all()) == 1
