"""Accessibility (RGAA 4.1 / WCAG 2.1 AA) checked in Chromium: axe-core on every page and dialog of
the parent and agent journeys, in their empty, filled, error and confirmation states; reflow at 320 px."""
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from models import Child, Establishment, Invoice, Period
from tests.test_journeys import login

AXE = Path(__file__).parent / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@pytest.fixture
def a11y_page(browser, live_server):
    if not AXE.exists():
        pytest.skip("axe-core missing: make test installs it (npm)")
    # bypass_csp lets Playwright inject axe-core; the pages themselves keep their CSP
    context = browser.new_context(base_url=live_server, locale="fr-FR", bypass_csp=True, viewport={"width": 1024, "height": 800})
    page = context.new_page()
    page.set_default_timeout(10000)
    yield page
    context.close()


def violations(page) -> list[str]:
    """axe-core's WCAG 2.1 AA violations on the page as it is now, one line each."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    result = page.evaluate("async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}})).violations",
                           WCAG)
    return [f"{v['id']}: {v['help']} — {[n['target'] for n in v['nodes']][:3]}" for v in result]


def check(page, what: str, found: dict):
    problems = violations(page)
    if problems:
        found[what] = problems


def test_parent_pages_and_dialogs_have_no_axe_violation(a11y_page, db, smtp):
    page, found = a11y_page, {}
    page.goto("/")
    check(page, "connexion", found)
    page.get_by_role("button", name="Connexion").click()
    check(page, "connexion (erreurs)", found)
    page.goto("/identifiant-oublie")
    check(page, "mot de passe oublié", found)
    page.get_by_label("Adresse mail").fill("parent@demo.test")
    page.get_by_role("button", name="Valider").click()
    check(page, "mot de passe oublié (confirmation)", found)
    page.goto(smtp.link(smtp.wait_for("parent@demo.test")[0]))
    check(page, "nouveau mot de passe", found)
    page.get_by_role("button", name="Valider").click()
    check(page, "nouveau mot de passe (erreurs)", found)

    login(page)
    check(page, "mon compte famille", found)
    for path, name in (("/compte/famille/modifier", "informations de la famille"), ("/compte/login/modifier", "login"),
                       ("/compte/mot-de-passe/modifier", "mot de passe"), ("/enfants/ajouter", "ajouter un enfant"),
                       ("/reservations/absence", "absence"), ("/reservations/legende", "légende")):
        page.goto(path)
        check(page, name, found)
        submit = page.locator("main form button[type=submit]").first
        if path.startswith("/compte") or path.startswith("/enfants"):
            page.locator("main form input[type=text], main form input[type=email], main form input[type=password]").first.fill("")
            submit.click()
            check(page, f"{name} (erreurs)", found)
    lea = db.exec(select(Child).where(Child.first_name == "Léa")).one()
    page.goto(f"/enfants/{lea.id}")
    check(page, "fiche enfant", found)

    page.goto("/")
    page.wait_for_load_state("load")
    page.get_by_role("link", name="Nouvelle réservation").click()
    dialog = page.get_by_role("dialog", name="Nouvelle réservation")
    dialog.get_by_label("Léa Martin").check()
    dialog.get_by_label("Accueil de loisirs Les Lutins").check()
    expect(dialog.get_by_text("3. La période")).to_be_visible()
    check(page, "fenêtre nouvelle réservation", found)
    dialog.locator("input[name=periode]").first.check()
    dialog.get_by_role("button", name="Continuer").click()
    expect(page.get_by_role("heading", name="Planning de Léa Martin")).to_be_visible()
    check(page, "planning", found)
    page.locator("td.cell--available button").first.click()
    expect(page.locator("td.cell--selected").first).to_be_visible()
    page.get_by_text("Légende", exact=True).click()
    page.locator("summary", has_text="Matinée").click()
    check(page, "planning (sélection, légende, menu)", found)
    page.locator("details.unit-menu[open]").get_by_role("link", name="Sélection automatique des jours").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    check(page, "sélection automatique", found)
    page.get_by_role("dialog").get_by_role("button", name="Valider").click()
    expect(page.get_by_role("dialog").get_by_role("alert")).to_be_visible()
    check(page, "sélection automatique (erreur)", found)
    page.keyboard.press("Escape")
    page.get_by_role("link", name="Valider le planning").click()
    check(page, "récapitulatif", found)
    page.get_by_role("button", name="Confirmer la réservation").click()
    check(page, "réservation enregistrée", found)

    invoice = db.exec(select(Invoice)).first()
    page.goto("/")
    page.wait_for_load_state("load")
    page.get_by_role("link", name=f"Voir la facture {invoice.number}").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    check(page, "fenêtre facture", found)
    page.goto(f"/factures/{invoice.id}")
    check(page, "page facture", found)
    assert found == {}, "\n".join(f"{k}: {v}" for k, v in found.items())


def test_agent_pages_have_no_axe_violation(a11y_page, db):
    page, found = a11y_page, {}
    login(page, "agent@demo.test", "agent-demo-ribambelle")
    est = db.exec(select(Establishment)).first()
    period = db.exec(select(Period).where(Period.establishment_id == est.id)).first()
    invoice = db.exec(select(Invoice)).first()
    from models import ChangeRequest

    request = db.exec(select(ChangeRequest)).first()
    for path, name in (("/agent/", "dossiers à valider"), (f"/agent/demandes/{request.id}", "demande de modification"),
                       ("/agent/reservations", "demandes de réservation"),
                       (f"/agent/presences?etablissement={est.id}&jour={period.start_date.isoformat()}", "liste de présence"),
                       ("/agent/facturation", "facturation"), (f"/agent/factures/{invoice.id}", "facture (régie)"),
                       ("/page-qui-n-existe-pas", "page introuvable")):
        page.goto(path)
        check(page, name, found)
    page.goto(f"/agent/demandes/{request.id}")
    page.get_by_role("button", name="Refuser").click()
    check(page, "demande de modification (erreur)", found)
    assert found == {}, "\n".join(f"{k}: {v}" for k, v in found.items())


@pytest.mark.parametrize("width", [320])
def test_pages_reflow_at_320_px_without_horizontal_scrolling(browser, live_server, db, width):
    """RGAA 10.11: at 320 px (or 200 % zoom on 640 px), only the planning grid scrolls sideways."""
    context = browser.new_context(base_url=live_server, locale="fr-FR", viewport={"width": width, "height": 640})
    page = context.new_page()
    login(page)
    lea = db.exec(select(Child).where(Child.first_name == "Léa")).one()
    est = db.exec(select(Establishment)).first()
    period = db.exec(select(Period).where(Period.establishment_id == est.id)).first()
    too_wide = {}
    for path in ("/", "/compte/famille/modifier", "/enfants/ajouter", f"/enfants/{lea.id}", "/reservations/nouvelle",
                 f"/reservations/planning/{lea.id}/{period.id}", "/reservations/absence", "/reservations/legende"):
        page.goto(path)
        width_seen = page.evaluate("document.documentElement.scrollWidth")
        if width_seen > width:
            too_wide[path] = width_seen
    context.close()
    assert too_wide == {}


def test_session_warning_lets_the_parent_extend_the_session(browser, live_server, make_app):
    """RGAA 13.1: two minutes before the 30-minute idle limit a warning opens; its button extends."""
    context = browser.new_context(base_url=live_server, locale="fr-FR")
    page = context.new_page()
    page.clock.install()
    login(page)
    page.wait_for_load_state("load")
    warning = page.get_by_role("dialog", name="Votre session va bientôt expirer")
    expect(warning).to_be_hidden()
    page.clock.run_for(29 * 60 * 1000)  # 28 minutes idle: the warning opens (30-minute sessions)
    expect(warning).to_be_visible()
    warning.get_by_role("button", name="Prolonger la session").click()
    expect(warning).to_be_hidden()
    context.close()


def test_extend_session_route(client, auth):
    import time

    from tests.conftest import csrf_from

    auth.login()
    token = csrf_from(client.get("/compte/mot-de-passe/modifier").get_data(as_text=True))
    with client.raw.session_transaction() as sess:
        sess["seen_at"] = int(time.time()) - 29 * 60
    response = client.post("/session/prolonger", data={"csrf_token": token}, headers={"HX-Request": "true"})
    assert response.status_code == 204
    with client.raw.session_transaction() as sess:
        assert int(time.time()) - sess["seen_at"] < 5
