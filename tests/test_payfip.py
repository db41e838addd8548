"""PayFiP end to end through eopayment's own payfip_ws backend and a simulator of PayFiP's web service.

The portal talks SOAP (eopayment's WSDL, zeep) to the simulator served by a real HTTP server, the parent's
browser is a real HTTP client with its cookies, PayFiP's notification is a real POST of ``idOp``.
"""
import functools
import re
import time
import urllib.parse
from datetime import timedelta

import pytest
import requests
from playwright.sync_api import expect
from sqlmodel import select

from blueprints import simulator
from db import get_db
from models import Credit, Invoice, Payment
from services import payments
from tests.conftest import Auth, Client, check_invariants, free_port, page_text, place_drift
from tests.factories import family_invoice, login

pytestmark = pytest.mark.usefixtures("billed")  # every test here starts with an invoice to pay


@pytest.fixture
def app_settings():
    return {"PAYMENT_SIMULATOR": "payfip_ws", "PAYMENT_BACKEND": "payfip_ws", "PAYMENT_TIMEOUT": 3}


class Parent:
    """A parent's browser on the live server: cookies, forms with their CSRF token, redirects followed."""

    def __init__(self, base: str):
        self.base, self.http = base, requests.Session()

    def get(self, path: str, **kwargs):
        return self.http.get(path if path.startswith("http") else self.base + path, timeout=15, **kwargs)

    def post(self, path: str, data: dict, page: str | None = None, **kwargs):
        html = self.get(page or path).text
        token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html).group(1)
        return self.http.post(path if path.startswith("http") else self.base + path,
                              data={"csrf_token": token, **data}, headers={"Referer": self.base + "/"}, timeout=15,
                              **kwargs)

    def login(self, email="zoe.parent@tilleuls.test", password="zoe-parent-tilleuls"):
        response = self.post("/", {"email": email, "password": password})
        assert "Mon compte famille" in response.text
        return self


def pay(parent: Parent, invoice: Invoice, **kwargs):
    return parent.post(f"/factures/{invoice.id}/payer", {}, page=f"/factures/{invoice.id}", **kwargs)


def to_payfip(parent, invoice):
    """« Payer en ligne »: the parent lands on PayFiP's page (the simulator's) for a fresh idop."""
    response = pay(parent, invoice, allow_redirects=False)
    assert response.status_code == 302, response.text[:500]
    location = response.headers["Location"]
    assert "/simulateur-paiement/payfip/paiement?idop=" in location
    return location, urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["idop"][0]


def decide(parent, page_url, choice):
    page = parent.get(page_url)
    assert "PayFiP (démonstration)" in page.text
    idop = urllib.parse.parse_qs(urllib.parse.urlsplit(page_url).query)["idop"][0]
    return parent.http.post(parent.base + "/simulateur-paiement/payfip/decision", data={"idop": idop, "choix": choice},
                            timeout=15)


def test_payfip_payment_paid_once_with_payfip_own_references(live_server, db):
    parent = Parent(live_server).login()
    invoice = family_invoice(db)
    page_url, idop = to_payfip(parent, invoice)
    payment = db.exec(select(Payment).where(Payment.method == "online")).one()
    # Our id is in the return address; PayFiP's idop is kept beside it.
    assert payment.provider_reference == idop and payment.transaction_id != idop and payment.status == "pending"
    outcome = decide(parent, page_url, "payer")
    assert outcome.url.startswith(f"{live_server}/factures/paiement/{payment.transaction_id}")
    assert "Merci : votre paiement de" in outcome.text and "est validé" in outcome.text
    db.expire_all()
    assert db.get(Payment, payment.id).status == "paid"
    assert family_invoice(db).left_cents == 0
    # The return again, a replayed notification, the status page: nothing twice.
    parent.get(f"/factures/paiement/retour/{payment.transaction_id}?idop={idop}")
    assert requests.post(f"{live_server}/factures/paiement/notification", data={"idOp": idop}).status_code == 200
    db.expire_all()
    assert family_invoice(db).paid_cents == family_invoice(db).total_cents
    assert db.exec(select(Credit)).all() == []


def test_payfip_refused_and_abandoned_leave_the_invoice_payable(live_server, db):
    parent = Parent(live_server).login()
    invoice = family_invoice(db)
    page_url, idop = to_payfip(parent, invoice)
    outcome = decide(parent, page_url, "refuser")
    assert "Le paiement a été refusé par la banque" in outcome.text
    db.expire_all()
    assert db.exec(select(Payment).where(Payment.provider_reference == idop)).one().status == "refused"

    page_url, idop = to_payfip(parent, invoice)
    outcome = decide(parent, page_url, "abandonner")
    # eopayment reads an abandon as "waiting" for two minutes (the parent may still pay with that idop).
    assert "pas encore confirmé" in outcome.text
    with simulator._lock:
        simulator._operations[idop]["decided"] -= 3 * 60
    later = parent.get(outcome.url)
    assert "Paiement abandonné" in later.text and "la facture reste à payer" in later.text
    db.expire_all()
    assert db.exec(select(Payment).where(Payment.provider_reference == idop)).one().status == "cancelled"
    assert family_invoice(db).left_cents == invoice.left_cents
    assert "Payer en ligne" in parent.get(f"/factures/{invoice.id}").text


def test_payfip_late_notification_is_waited_for_then_shown(live_server, db):
    parent = Parent(live_server).login()
    invoice = family_invoice(db)
    page_url, idop = to_payfip(parent, invoice)
    outcome = decide(parent, page_url, "payer-retard")
    # PayFiP already knows: the outcome is read from its web service at the return, before its notification.
    assert "est validé" in outcome.text
    time.sleep(simulator.LATE_SECONDS + 1)  # the late notification then changes nothing
    db.expire_all()
    assert family_invoice(db).paid_cents == invoice.total_cents


def test_a_forged_payfip_notification_carries_no_weight(live_server, db):
    """The notification names only an idop: the outcome is always asked of PayFiP."""
    parent = Parent(live_server).login()
    invoice = family_invoice(db)
    page_url, idop = to_payfip(parent, invoice)
    for body in ({"idOp": idop, "resultrans": "P"}, {"idOp": "inconnu"}, {"refdet": invoice.number, "resultrans": "P"}):
        requests.post(f"{live_server}/factures/paiement/notification", data=body, timeout=10)
    db.expire_all()
    assert db.exec(select(Payment).where(Payment.provider_reference == idop)).one().status == "pending"
    assert family_invoice(db).paid_cents == invoice.paid_cents


def test_a_second_pay_while_one_is_pending_offers_to_resume_or_give_up(live_server, db):
    parent = Parent(live_server).login()
    invoice = family_invoice(db)
    page_url, idop = to_payfip(parent, invoice)
    second = pay(parent, invoice)
    assert second.status_code == 409 and "est déjà en cours" in second.text
    assert "Reprendre ce paiement" in second.text and "Abandonner ce paiement" in second.text
    assert db.exec(select(Payment).where(Payment.method == "online")).all()[0].provider_reference == idop
    resumed = parent.post(f"/factures/{invoice.id}/paiement-en-cours/reprendre", {}, page=f"/factures/{invoice.id}",
                          allow_redirects=False)
    assert resumed.headers["Location"] == page_url
    given_up = parent.post(f"/factures/{invoice.id}/paiement-en-cours/abandonner", {}, page=f"/factures/{invoice.id}")
    assert "Le paiement en cours est abandonné" in given_up.text
    new_page, new_idop = to_payfip(parent, invoice)
    assert new_idop != idop
    db.expire_all()
    states = {p.provider_reference: p.status for p in db.exec(select(Payment).where(Payment.method == "online"))}
    assert states == {idop: "cancelled", new_idop: "pending"}
    assert "Abandonné" in parent.get("/").text


def test_two_tabs_both_paid_at_payfip_make_a_credit_not_a_hidden_surplus(live_server, db):
    """The parent gave up the first tab, then paid in both: the bank took twice; the family is owed once."""
    parent = Parent(live_server).login()
    invoice = family_invoice(db)
    left_before, drift = invoice.left_cents, place_drift(db)
    first_page, first = to_payfip(parent, invoice)
    parent.post(f"/factures/{invoice.id}/paiement-en-cours/abandonner", {}, page=f"/factures/{invoice.id}")
    second_page, second = to_payfip(parent, invoice)
    decide(parent, second_page, "payer")
    late = decide(parent, first_page, "payer")  # the first tab, still open at PayFiP
    assert "trop-perçu" in late.text
    db.expire_all()
    paid = db.exec(select(Payment).where(Payment.method == "online", Payment.status == "paid")).all()
    assert len(paid) == 2
    credit = db.exec(select(Credit)).one()
    invoice = family_invoice(db)
    assert invoice.paid_cents == invoice.total_cents and credit.amount_cents == left_before
    # What the bank took: the invoice's balance once, the rest as the family's credit.
    assert sum(p.amount_cents for p in paid) == left_before + credit.amount_cents
    assert db.exec(select(Payment).where(Payment.provider_reference == first)).one().anomaly
    home = parent.get("/").text
    assert "Trop-perçus" in home and "La régie vous le rembourse" in home
    check_invariants(db, drift)


def test_payfip_unreachable_or_slow_says_so_and_starts_nothing(live_server, app, db, monkeypatch):
    parent = Parent(live_server).login()
    invoice = family_invoice(db)
    dead = free_port()  # nothing listens there
    app.config["PAYMENT_OPTIONS"] = {"wsdl_url": f"http://127.0.0.1:{dead}/securite?wsdl"}
    down = pay(parent, invoice)
    assert down.status_code == 503 and "Le paiement en ligne est momentanément indisponible" in down.text
    assert db.exec(select(Payment).where(Payment.method == "online")).all() == []

    # A web service that answers after the time limit (PAYMENT_TIMEOUT is 3 s here).
    app.config["PAYMENT_OPTIONS"] = {}
    monkeypatch.setattr(simulator, "SOAP_DELAY", 5)
    started = time.time()
    slow = pay(parent, invoice)
    assert slow.status_code == 503 and "momentanément indisponible" in slow.text
    assert time.time() - started < 5
    assert db.exec(select(Payment).where(Payment.method == "online")).all() == []
    monkeypatch.setattr(simulator, "SOAP_DELAY", 0)
    assert to_payfip(parent, invoice)[1]  # back: the invoice was payable all along


def test_payfip_error_code_says_so(live_server, app, db):
    parent = Parent(live_server).login()
    invoice = family_invoice(db)
    app.config["PAYMENT_OPTIONS"] = {"numcli": "999999"}  # PayFiP answers "unknown customer"
    refused = pay(parent, invoice)
    assert refused.status_code == 503 and "momentanément indisponible" in refused.text
    assert db.exec(select(Payment).where(Payment.method == "online")).all() == []


@pytest.mark.parametrize("app_settings", [{"PAYMENT_SIMULATOR": "payfip_ws", "PAYMENT_BACKEND": "payfip_ws",
                                           "PAYMENT_OPTIONS": {"saisie": "W"}}])
def test_a_payfip_test_answer_never_pays_in_production(live_server, app, db):
    """Configured for production (saisie W): an operation PayFiP reports in test mode is refused."""
    parent = Parent(live_server).login()
    invoice = family_invoice(db)
    page_url, idop = to_payfip(parent, invoice)
    with simulator._lock:
        simulator._operations[idop]["saisie"] = "T"  # PayFiP says this operation was a test
    decide(parent, page_url, "payer")
    db.expire_all()
    assert db.exec(select(Payment).where(Payment.provider_reference == idop)).one().status == "pending"
    assert family_invoice(db).paid_cents == invoice.paid_cents


def test_payfip_answer_for_another_customer_number_is_refused(live_server, db):
    parent = Parent(live_server).login()
    invoice = family_invoice(db)
    page_url, idop = to_payfip(parent, invoice)
    with simulator._lock:
        simulator._operations[idop]["numcli"] = "654321"  # another régie's operation
    decide(parent, page_url, "payer")
    db.expire_all()
    assert family_invoice(db).paid_cents == invoice.paid_cents


def test_an_abandoned_tab_is_asked_about_before_it_expires(live_server, app, db):
    """Closed at PayFiP's page: still "En cours" while PayFiP says so, then "Expiré" when PayFiP forgets it."""
    parent = Parent(live_server).login()
    invoice = family_invoice(db)
    page_url, idop = to_payfip(parent, invoice)
    payment = db.exec(select(Payment).where(Payment.provider_reference == idop)).one()
    payment.created_at = payment.created_at - payments.PENDING_LIFETIME - timedelta(minutes=1)
    db.add(payment)
    db.commit()
    with app.app_context():
        payments.refresh_pending(get_db(), payments.provider(app.config))
    db.expire_all()
    assert db.get(Payment, payment.id).status == "pending"  # PayFiP: P5, result not known yet
    with simulator._lock:
        del simulator._operations[idop]  # PayFiP's nightly clean-up: the idop is unknown now (P1)
    with app.app_context():
        payments.refresh_pending(get_db(), payments.provider(app.config))
    db.expire_all()
    assert db.get(Payment, payment.id).status == "expired"
    assert "Expiré" in parent.get("/").text and "Payer en ligne" in parent.get(f"/factures/{invoice.id}").text


def test_notification_lost_while_the_portal_was_down_is_retried_and_applied_once(live_server, app, db, monkeypatch):
    parent = Parent(live_server).login()
    invoice = family_invoice(db)
    page_url, idop = to_payfip(parent, invoice)
    with simulator._lock:
        simulator._operations[idop].update(resultrans="P", decided=time.time(), numauto="123456")
    answers = iter([503, 503])
    view = app.view_functions["billing.payment_notification"]

    @functools.wraps(view)  # the same name: still exempt from CSRF, as the provider's notification is
    def down_twice():  # the portal is down for the first two tries (it answers 503), then back
        code = next(answers, None)
        return ("indisponible", code) if code else view()

    monkeypatch.setitem(app.view_functions, "billing.payment_notification", down_twice)
    monkeypatch.setattr(simulator, "RETRY_DELAYS", (0, 0.2, 0.2, 0.2))
    tries = simulator.notify(f"{live_server}/factures/paiement/notification", f"idOp={idop}")
    assert tries == 3
    assert simulator.notify(f"{live_server}/factures/paiement/notification", f"idOp={idop}") == 1  # again: nothing twice
    db.expire_all()
    assert db.exec(select(Payment).where(Payment.provider_reference == idop)).one().status == "paid"
    assert family_invoice(db).paid_cents == invoice.total_cents


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_payfip_journey_in_chromium_under_the_csp(browser, live_server, db, javascript, tmp_path):
    """« Payer en ligne » through PayFiP's page and back, with the portal's own CSP (a blocked form fails)."""
    context = browser.new_context(base_url=live_server, locale="fr-FR", java_script_enabled=javascript,
                                  viewport={"width": 360, "height": 740})
    page = context.new_page()
    blocked = []
    page.on("console", lambda msg: blocked.append(msg.text) if "Content Security Policy" in msg.text else None)
    invoice = family_invoice(db)
    login(page)
    page.goto(f"/factures/{invoice.id}")
    page.get_by_role("button", name=re.compile("Payer en ligne")).click()
    expect(page.get_by_role("heading", name="PayFiP (démonstration) — paiement sécurisé")).to_be_visible()
    page.get_by_role("button", name="Abandonner").click()
    expect(page.locator("#payment-status")).to_contain_text("pas encore confirmé")
    page.get_by_role("link", name="Retour à mes factures").click()
    # Paid in a second go: the first (given up at PayFiP) waits; the parent is offered to give it up.
    page.goto(f"/factures/{invoice.id}")
    page.get_by_role("button", name=re.compile("Payer en ligne")).click()
    expect(page.get_by_role("heading", name=re.compile("est déjà en cours"))).to_be_visible()
    page.get_by_role("button", name="Abandonner ce paiement").click()
    expect(page.get_by_text("Le paiement en cours est abandonné")).to_be_visible()
    page.get_by_role("button", name=re.compile("Payer en ligne")).click()
    page.get_by_role("button", name="Payer", exact=True).click()
    expect(page.locator("#payment-status")).to_contain_text("est validé")
    page.screenshot(path=str(tmp_path / "payfip-paid.png"), full_page=True)  # to look at, at 360 px
    page.get_by_role("link", name="Retour à mes factures").click()
    expect(page.get_by_role("cell", name="Payée", exact=True)).to_be_visible()
    assert family_invoice(db).left_cents == 0 and blocked == []
    context.close()


def test_refused_payfip_payment_in_chromium_without_javascript(browser, live_server, db):
    context = browser.new_context(base_url=live_server, locale="fr-FR", java_script_enabled=False)
    page = context.new_page()
    invoice = family_invoice(db)
    login(page)
    page.goto(f"/factures/{invoice.id}")
    page.get_by_role("button", name=re.compile("Payer en ligne")).click()
    page.get_by_role("button", name="Refuser le paiement").click()
    expect(page.locator("#payment-status")).to_contain_text("refusé par la banque")
    assert family_invoice(db).left_cents == invoice.left_cents
    context.close()


@pytest.mark.parametrize("backend_name, origin", [
    ("payfip_ws", "https://www.payfip.gouv.fr"),
    ("systempayv2", "https://paiement.systempay.fr"),
    ("payzen", "https://secure.payzen.eu"),
])
def test_csp_lets_the_form_go_to_the_configured_provider_only(make_app, backend_name, origin):
    """form-action comes from eopayment's backend (PayFiP is payfip.gouv.fr, not a typed payfip.gov.fr)."""
    app = make_app(PAYMENT_BACKEND=backend_name, PAYMENT_SIMULATOR=False)
    csp = app.test_client().get("/").headers["Content-Security-Policy"]
    assert f"form-action 'self' {origin};" in csp
    assert "payfip.gov.fr" not in csp


def test_an_unsupported_provider_stops_the_start(make_app):
    with pytest.raises(RuntimeError, match="PAYMENT_BACKEND 'tipi' n'est pas pris en charge"):
        make_app(PAYMENT_BACKEND="tipi", PAYMENT_SIMULATOR=False)


def test_the_regie_sees_the_credit_and_records_its_refund(live_server, app, db):
    parent = Parent(live_server).login()
    invoice = family_invoice(db)
    first_page, first = to_payfip(parent, invoice)
    parent.post(f"/factures/{invoice.id}/paiement-en-cours/abandonner", {}, page=f"/factures/{invoice.id}")
    second_page, _ = to_payfip(parent, invoice)
    decide(parent, second_page, "payer")
    decide(parent, first_page, "payer")
    credit = db.exec(select(Credit)).one()
    agent = Client(app.test_client())
    Auth(agent).login("agent@tilleuls.test")
    page = page_text(agent.get("/agent/facturation"))
    assert "Trop-perçus à rembourser ou reporter" in page and "Durand" in page
    assert "Paiements en ligne à vérifier" in page and "après expiration ou abandon" in page
    empty = agent.submit("/agent/facturation", {"reference": ""}, action=f"/agent/trop-percus/{credit.id}/rembourse",
                         follow_redirects=True)
    assert "Indiquez la référence du remboursement" in page_text(empty)
    done = agent.submit("/agent/facturation", {"reference": "Virement 2026-12-0042"},
                        action=f"/agent/trop-percus/{credit.id}/rembourse", follow_redirects=True)
    assert "Le remboursement du trop-perçu est enregistré." in page_text(done)
    db.expire_all()
    assert db.get(Credit, credit.id).status == "refunded"
    again = agent.submit("/agent/facturation", {"reference": "encore"}, action=f"/agent/trop-percus/{credit.id}/rembourse",
                         follow_redirects=True)
    assert "déjà remboursé" in page_text(again)
    assert "Remboursé (Virement 2026-12-0042)" in parent.get("/").text


def test_flask_payments_check_resolves_payments_left_without_an_answer(live_server, app, db):
    """A notification never came and the parent never came back: the cron job asks PayFiP."""
    parent = Parent(live_server).login()
    invoice = family_invoice(db)
    page_url, idop = to_payfip(parent, invoice)
    with simulator._lock:  # paid at PayFiP; the notification and the return were both lost
        simulator._operations[idop].update(resultrans="P", decided=time.time(), numauto="654321")
    payment = db.exec(select(Payment).where(Payment.provider_reference == idop)).one()
    payment.created_at = payment.created_at - payments.PENDING_LIFETIME - timedelta(minutes=1)
    db.add(payment)
    db.commit()
    output = app.test_cli_runner().invoke(args=["payments", "check"]).output
    assert "Paiements en ligne vérifiés ; 0 encore en cours." in output
    db.expire_all()
    assert db.get(Payment, payment.id).status == "paid" and family_invoice(db).left_cents == 0
