"""Online payment through eopayment and the local bank simulator: notifications applied once, only
when signed and for the right amount; a paid invoice never goes back; abandoned leaves it payable."""
import re
import threading
import urllib.parse
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from blueprints import simulator
from models import Credit, Payment, utcnow
from tests.conftest import Client, check_invariants, csrf_from, page_text, place_drift, require_axe
from tests.factories import family_invoice, login, reservation_with_a_request, tab_to, violations

pytestmark = pytest.mark.usefixtures("billed")  # every test here starts with an invoice to pay


@pytest.fixture
def app_settings():
    """The bank simulator takes the place of the provider."""
    return {"PAYMENT_SIMULATOR": True}


def start_payment(client, invoice):
    page = client.get(f"/factures/{invoice.id}").get_data(as_text=True)
    assert "Payer en ligne" in page
    response = client.post(f"/factures/{invoice.id}/payer", data={"csrf_token": csrf_from(page)})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and 'action="http://localhost/simulateur-paiement/"' in html
    return dict(re.findall(r'<input type="hidden" name="(vads_[^"]+|signature)" value="([^"]*)"', html))


def bank_answer(app, request_fields, outcome="payer", **override):
    """What the bank sends back: the request's vads fields, the outcome, signed with the shared secret."""
    answer = {k: v for k, v in request_fields.items() if k.startswith("vads_")}
    answer.update(simulator.OUTCOMES[outcome], vads_extra_result="")
    answer.update(override)
    with app.test_request_context():
        return urllib.parse.urlencode(simulator.sign(answer))


def notify(client, body):
    return client.post("/factures/paiement/notification", data=body, content_type="application/x-www-form-urlencoded")


def test_payer_en_ligne_sends_the_signed_amount_in_cents(client, auth, db):
    auth.login()
    invoice = family_invoice(db)
    fields = start_payment(client, invoice)
    assert fields["vads_amount"] == str(invoice.left_cents) and fields["signature"]
    payment = db.exec(select(Payment).where(Payment.method == "online")).one()
    assert payment.status == "pending" and payment.amount_cents == invoice.left_cents
    # the bank's page accepts the signed request and shows the amount
    bank = page_text(client.post("/simulateur-paiement/", data=fields))
    assert "Banque de démonstration" in bank and "Payer" in bank and "Abandonner" in bank
    forged = dict(fields, vads_amount="1")
    assert client.post("/simulateur-paiement/", data=forged).status_code == 400


def test_notification_twice_late_and_forged_is_applied_once(client, auth, db):
    auth.login()
    invoice = family_invoice(db)
    fields = start_payment(client, invoice)
    body = bank_answer(client.raw.application, fields)
    forged = body.replace("vads_trans_status=AUTHORISED", "vads_trans_status=AUTHORISEE")
    assert notify(client, forged).status_code == 400
    assert family_invoice(db).paid_cents == 1000  # the cheque only
    assert notify(client, body).get_data(as_text=True) == "OK"
    assert notify(client, body).status_code == 200  # again: nothing more
    paid = family_invoice(db)
    assert paid.paid_cents == paid.total_cents and paid.left_cents == 0
    assert db.exec(select(Payment).where(Payment.method == "online")).one().status == "paid"
    # a refusal arriving afterwards never takes the payment back
    notify(client, bank_answer(client.raw.application, fields, "refuser"))
    assert family_invoice(db).left_cents == 0
    payment = db.exec(select(Payment).where(Payment.method == "online")).one()
    assert payment.status == "paid"
    assert "Paiement validé" in page_text(client.get(f"/factures/paiement/{payment.transaction_id}"))


def test_signed_answer_for_another_amount_is_not_applied(client, auth, db):
    auth.login()
    invoice = family_invoice(db)
    fields = start_payment(client, invoice)
    assert notify(client, bank_answer(client.raw.application, fields, vads_amount="1")).status_code == 400
    assert family_invoice(db).paid_cents == 1000


def test_return_before_the_notification_applies_it_and_shows_the_outcome(client, auth, db):
    auth.login()
    invoice = family_invoice(db)
    fields = start_payment(client, invoice)
    payment = db.exec(select(Payment).where(Payment.method == "online")).one()
    query = bank_answer(client.raw.application, fields)
    response = client.get(f"/factures/paiement/retour/{payment.transaction_id}?{query}")
    assert response.status_code == 302
    page = page_text(client.get(response.headers["Location"]))
    assert "votre paiement de" in page and "est validé" in page
    assert family_invoice(db).left_cents == 0
    assert notify(client, query).status_code == 200  # the notification, late: nothing twice
    assert family_invoice(db).paid_cents == family_invoice(db).total_cents


def test_waiting_page_rechecks_until_the_notification(client, auth, db):
    auth.login()
    invoice = family_invoice(db)
    fields = start_payment(client, invoice)
    payment = db.exec(select(Payment).where(Payment.method == "online")).one()
    page = page_text(client.get(f"/factures/paiement/retour/{payment.transaction_id}", follow_redirects=True))
    assert "pas encore confirmé" in page and 'hx-trigger="every 2s"' in page
    notify(client, bank_answer(client.raw.application, fields))
    fragment = page_text(client.get(f"/factures/paiement/{payment.transaction_id}", headers={"HX-Request": "true"}))
    assert "est validé" in fragment and "every 2s" not in fragment


def test_abandoned_payment_leaves_the_invoice_payable(client, auth, db):
    auth.login()
    invoice = family_invoice(db)
    fields = start_payment(client, invoice)
    notify(client, bank_answer(client.raw.application, fields, "abandonner"))
    assert db.exec(select(Payment).where(Payment.method == "online")).one().status == "cancelled"
    assert family_invoice(db).left_cents == invoice.left_cents
    assert "Payer en ligne" in page_text(client.get(f"/factures/{invoice.id}"))


def test_29_cents_are_paid_29_cents(client, auth, db):
    invoice = family_invoice(db)
    invoice.total_cents, invoice.paid_cents = 29, 0
    db.add(invoice)
    db.commit()
    auth.login()
    fields = start_payment(client, invoice)
    assert fields["vads_amount"] == "29"
    notify(client, bank_answer(client.raw.application, fields))
    assert family_invoice(db).paid_cents == 29


def test_past_due_and_other_families_invoices_cannot_be_paid(client, auth, db):
    invoice = family_invoice(db)
    invoice.due_on = invoice.issued_on - timedelta(days=1)
    db.add(invoice)
    db.commit()
    auth.login()
    page = page_text(client.get(f"/factures/{invoice.id}"))
    assert "Paiement en ligne impossible : La date limite de paiement en ligne est dépassée" in page
    response = client.post(f"/factures/{invoice.id}/payer", data={"csrf_token": csrf_from(page)}, follow_redirects=True)
    assert "date limite" in page_text(response)
    assert db.exec(select(Payment).where(Payment.method == "online")).all() == []
    auth.logout()
    auth.login("rayan.parent@tilleuls.test")
    token = csrf_from(client.get("/compte/").get_data(as_text=True))
    assert client.post(f"/factures/{invoice.id}/payer", data={"csrf_token": token}).status_code == 404


def test_simulator_is_off_unless_asked_for(make_app):
    assert make_app().test_client().post("/simulateur-paiement/").status_code == 404


# --- in Chromium, through the simulator -----------------------------------------------------------------


def test_payment_journey_through_the_bank_simulator(page, db):
    invoice = family_invoice(db)
    login(page)
    page.wait_for_load_state("load")
    page.get_by_role("link", name=f"Voir la facture {invoice.number}").click()
    dialog = page.get_by_role("dialog", name=f"Facture {invoice.number}")
    expect(dialog).to_contain_text("Reste à payer")
    dialog.get_by_role("button", name=re.compile("Payer en ligne")).click()
    expect(page.get_by_role("heading", name="Banque de démonstration — paiement sécurisé")).to_be_visible()
    page.get_by_role("button", name="Payer", exact=True).click()
    expect(page.locator("#payment-status")).to_contain_text("est validé")
    page.get_by_role("link", name="Retour à mes factures").click()
    expect(page.get_by_role("cell", name="Payée", exact=True)).to_be_visible()
    assert family_invoice(db).left_cents == 0
    assert page.console_errors == []


def test_late_confirmation_is_awaited_then_shown(page, db):
    invoice = family_invoice(db)
    login(page)
    page.goto(f"/factures/{invoice.id}")
    page.get_by_role("button", name=re.compile("Payer en ligne")).click()
    page.get_by_role("button", name="Payer (confirmation en retard)").click()
    expect(page.locator("#payment-status")).to_contain_text("pas encore confirmé")
    expect(page.locator("#payment-status")).to_contain_text("est validé", timeout=15000)  # re-checked every 2 s
    assert family_invoice(db).left_cents == 0


def test_unanswered_online_payment_expires_and_the_invoice_stays_payable(client, auth, db):
    auth.login()
    invoice = family_invoice(db)
    start_payment(client, invoice)
    stale = db.exec(select(Payment).where(Payment.method == "online")).one()
    stale.created_at = utcnow() - timedelta(minutes=31)
    db.add(stale)
    db.commit()
    start_payment(client, invoice)  # a new try: the stale one is marked expired
    db.expire_all()
    statuses = sorted(p.status for p in db.exec(select(Payment).where(Payment.method == "online")))
    assert statuses == ["expired", "pending"]
    assert "Expiré" in page_text(client.get("/compte/"))


def test_cancellation_invoice_and_payment_with_javascript_off(browser, live_server, db):
    """RGAA and cheap phones: the section 9 and 11 journeys complete without JavaScript."""
    reservation_with_a_request(db)
    context = browser.new_context(base_url=live_server, locale="fr-FR", java_script_enabled=False)
    page = context.new_page()
    login(page)
    page.get_by_role("link", name="Demande d'annulation").click()
    page.get_by_label("Zoé Durand").check()
    page.get_by_role("button", name="Afficher les choix suivants").click()
    page.get_by_label("Centre de loisirs Les Tilleuls").check()
    page.get_by_role("button", name="Afficher les choix suivants").click()
    page.locator("input[name=periode]").first.check()
    page.get_by_role("button", name="Continuer").click()
    page.locator("summary", has_text="Matinée").click()
    page.locator("details.unit-menu[open]").get_by_role("button", name="Désélectionner tous les jours de la période").click()
    page.get_by_role("link", name="Valider le planning").click()
    page.get_by_role("button", name="Confirmer la demande d'annulation").click()
    expect(page.get_by_role("heading", name="Votre demande d'annulation est enregistrée")).to_be_visible()
    page.get_by_role("link", name="Terminer").click()

    invoice = family_invoice(db)
    page.get_by_role("link", name=f"Voir la facture {invoice.number}").click()
    expect(page.get_by_role("heading", name=f"Facture {invoice.number}")).to_be_visible()
    page.get_by_role("button", name=re.compile("Payer en ligne")).click()
    page.get_by_role("button", name="Continuer vers le paiement sécurisé").click()
    page.get_by_role("button", name="Refuser le paiement").click()
    expect(page.locator("#payment-status")).to_contain_text("refusé")
    assert family_invoice(db).left_cents == invoice.left_cents
    context.close()


@pytest.mark.backends("sqlite")  # markup, whatever the database (the statement is made so: make accessibility)
def test_payment_pages_have_no_axe_violation(browser, live_server, db):
    require_axe()
    context = browser.new_context(base_url=live_server, locale="fr-FR", bypass_csp=True, java_script_enabled=True)
    page = context.new_page()
    login(page)
    invoice = family_invoice(db)
    page.goto(f"/factures/{invoice.id}")
    found = {}
    page.get_by_role("button", name=re.compile("Payer en ligne")).click()
    expect(page.get_by_role("heading", name="Banque de démonstration — paiement sécurisé")).to_be_visible()
    found["banque simulée"] = violations(page)
    page.get_by_role("button", name="Payer (confirmation en retard)").click()
    expect(page.locator("#payment-status")).to_contain_text("pas encore confirmé")
    found["paiement en attente"] = violations(page)
    expect(page.locator("#payment-status")).to_contain_text("est validé", timeout=15000)
    found["paiement validé"] = violations(page)
    context.close()
    assert {k: v for k, v in found.items() if v} == {}


def test_payment_with_the_keyboard_only(browser, live_server, db):
    context = browser.new_context(base_url=live_server, locale="fr-FR")
    page = context.new_page()
    login(page)
    invoice = family_invoice(db)
    page.goto(f"/factures/{invoice.id}")
    tab_to(page, page.get_by_role("button", name=re.compile("Payer en ligne")))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Banque de démonstration — paiement sécurisé")).to_be_visible()
    tab_to(page, page.get_by_role("button", name="Payer", exact=True))
    page.keyboard.press("Enter")
    expect(page.locator("#payment-status")).to_contain_text("est validé")
    tab_to(page, page.get_by_role("link", name="Retour à mes factures"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Mon compte famille")).to_be_visible()
    context.close()


@pytest.mark.parametrize("app_settings", [{"PAYMENT_SIMULATOR": True, "BASE_URL": "https://famille.ville.test"}])
def test_return_and_notification_addresses_come_from_base_url(client, auth, db):
    """Asked through another trusted name (the server's own), the bank still gets the portal's address."""
    auth.login()
    invoice = family_invoice(db)
    page = client.get(f"/factures/{invoice.id}").get_data(as_text=True)
    html = client.post(f"/factures/{invoice.id}/payer", data={"csrf_token": csrf_from(page)}).get_data(as_text=True)
    fields = dict(re.findall(r'<input type="hidden" name="(vads_[^"]+)" value="([^"]*)"', html))
    assert 'action="https://famille.ville.test/simulateur-paiement/"' in html
    assert fields["vads_url_return"].startswith("https://famille.ville.test/factures/paiement/retour/")
    assert fields["vads_url_check"] == "https://famille.ville.test/factures/paiement/notification"


def _production_answer(app, fields, mode, **override):
    """A bank answer in ``mode``, signed with that mode's certificate (as SystemPay would)."""
    return bank_answer(app, {**fields, "vads_ctx_mode": mode}, **override)


@pytest.mark.parametrize("app_settings", [{"PAYMENT_SIMULATOR": True, "PAYMENT_OPTIONS": {"vads_ctx_mode": "PRODUCTION"}}])
def test_a_test_answer_never_pays_in_production(client, auth, db):
    """Configured for production, both certificates set: an answer signed with the test one is refused."""
    auth.login()
    invoice = family_invoice(db)
    fields = start_payment(client, invoice)
    assert fields["vads_ctx_mode"] == "PRODUCTION"
    assert notify(client, _production_answer(client.raw.application, fields, "TEST")).status_code == 400
    assert family_invoice(db).paid_cents == 1000
    assert notify(client, _production_answer(client.raw.application, fields, "PRODUCTION")).status_code == 200
    assert family_invoice(db).left_cents == 0


def test_an_answer_for_another_site_is_refused(client, auth, db):
    auth.login()
    invoice = family_invoice(db)
    fields = start_payment(client, invoice)
    assert notify(client, bank_answer(client.raw.application, fields, vads_site_id="87654321")).status_code == 400
    assert family_invoice(db).paid_cents == 1000


def test_two_identical_notifications_at_once_are_applied_once(app, client, auth, db):
    auth.login()
    invoice = family_invoice(db)
    drift = place_drift(db)
    fields = start_payment(client, invoice)
    body = bank_answer(app, fields)
    answers = []

    def post():
        answers.append(notify(Client(app.test_client()), body).status_code)

    threads = [threading.Thread(target=post) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [200, 200]
    paid = family_invoice(db)
    assert paid.paid_cents == paid.total_cents
    assert db.exec(select(Credit)).all() == []
    check_invariants(db, drift)


def test_a_confirmation_after_expiry_is_applied_and_flagged(client, auth, db):
    auth.login()
    invoice = family_invoice(db)
    fields = start_payment(client, invoice)
    payment = db.exec(select(Payment).where(Payment.method == "online")).one()
    payment.status, payment.completed_at = "expired", utcnow()
    db.add(payment)
    db.commit()
    assert notify(client, bank_answer(client.raw.application, fields)).status_code == 200
    db.expire_all()
    payment = db.get(Payment, payment.id)
    assert payment.status == "paid" and payment.anomaly  # the bank took it: never lost, shown to the régie
    assert family_invoice(db).left_cents == 0


def test_another_familys_return_address_shows_nothing_and_applies_nothing(client, auth, db):
    auth.login()
    invoice = family_invoice(db)
    fields = start_payment(client, invoice)
    payment = db.exec(select(Payment).where(Payment.method == "online")).one()
    auth.logout()
    auth.login("rayan.parent@tilleuls.test")
    query = bank_answer(client.raw.application, fields)
    assert client.get(f"/factures/paiement/retour/{payment.transaction_id}?{query}").status_code == 404
    assert client.get(f"/factures/paiement/{payment.transaction_id}").status_code == 404
    assert family_invoice(db).paid_cents == 1000


@pytest.mark.parametrize("app_settings", [{"PAYMENT_SIMULATOR": "payzen"}])
def test_payzen_through_the_simulator(client, auth, db):
    """PayZen speaks SystemPay's protocol at its own address: paid once, as configured."""
    auth.login()
    invoice = family_invoice(db)
    fields = start_payment(client, invoice)
    assert notify(client, bank_answer(client.raw.application, fields)).status_code == 200
    assert notify(client, bank_answer(client.raw.application, fields)).status_code == 200
    assert family_invoice(db).left_cents == 0


def test_abandon_at_systempay_in_chromium_reads_abandonne(page, db):
    invoice = family_invoice(db)
    login(page)
    page.goto(f"/factures/{invoice.id}")
    page.get_by_role("button", name=re.compile("Payer en ligne")).click()
    page.get_by_role("button", name="Abandonner").click()
    expect(page.locator("#payment-status")).to_contain_text("Paiement abandonné")
    page.get_by_role("link", name="Retour à mes factures").click()
    expect(page.get_by_role("cell", name="Abandonné", exact=True)).to_be_visible()
    assert family_invoice(db).left_cents == invoice.left_cents and page.console_errors == []
