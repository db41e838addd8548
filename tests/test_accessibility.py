"""Accessibility (RGAA 4.1 / WCAG 2.1 AA) checked in Chromium: axe-core on every page and dialog of
the parent and agent journeys, in their empty, filled, error and confirmation states; reflow at 320 px."""
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from models import Booking, ChangeRequest, Child, Establishment, Invoice, Period, Reservation, Unit
from services import accessibility
from tests.conftest import A11Y_PAGES, csrf_from, page_text, require_axe
from tests.factories import DEMO_PARENT, login, tab_to, violations

pytestmark = pytest.mark.demo  # walks the demo town as a visitor of `make run` would


@pytest.fixture
def a11y_page(browser, live_server):
    require_axe()
    # bypass_csp lets Playwright inject axe-core; the pages themselves keep their CSP
    context = browser.new_context(base_url=live_server, locale="fr-FR", bypass_csp=True, viewport={"width": 1024, "height": 800})
    page = context.new_page()
    page.set_default_timeout(10000)
    yield page
    context.close()


def check(page, what: str, found: dict):
    problems = violations(page)
    A11Y_PAGES[what] = {"path": page.url.split("/", 3)[-1], "violations": len(problems)}
    if problems:
        found[what] = problems


@pytest.mark.backends("sqlite")  # markup, whatever the database (the statement is made so: make accessibility)
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

    login(page, DEMO_PARENT)
    check(page, "mon compte famille", found)
    for path, name in (("/compte/famille/modifier", "informations de la famille"), ("/compte/login/modifier", "login"),
                       ("/compte/mot-de-passe/modifier", "mot de passe"), ("/enfants/ajouter", "ajouter un enfant"),
                       ("/reservations/absence", "absence"), ("/reservations/legende", "légende")):
        page.goto(path)
        check(page, name, found)
        submit = page.locator("main form button[type=submit]").first
        if path.startswith("/compte") or path.startswith("/enfants"):
            page.locator("main form input[type=text]:visible, main form input[type=email]:visible, main form input[type=password]:visible").first.fill("")
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
    period = db.exec(select(Period).join(Establishment).where(Establishment.name == "Accueil de loisirs Les Lutins")).one()
    page.goto(f"/reservations/annulation/planning/{lea.id}/{period.id}")
    check(page, "planning d'annulation", found)

    invoice = db.exec(select(Invoice)).first()
    page.goto("/")
    page.wait_for_load_state("load")
    page.get_by_role("link", name=f"Voir la facture {invoice.number}").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    check(page, "fenêtre facture", found)
    page.goto(f"/factures/{invoice.id}")
    check(page, "page facture", found)
    for path, name in (("/factures/attestations", "attestations"), ("/documents/", "mes documents"),
                       ("/inscriptions/nouvelle", "inscrire mon enfant")):
        page.goto(path)
        check(page, name, found)
    page.get_by_role("button", name="Continuer").click()
    check(page, "inscrire mon enfant (documents et autorisations)", found)
    assert found == {}, "\n".join(f"{k}: {v}" for k, v in found.items())


@pytest.mark.backends("sqlite")  # markup, whatever the database (the statement is made so: make accessibility)
def test_agent_pages_have_no_axe_violation(a11y_page, db):
    page, found = a11y_page, {}
    login(page, "admin@demo.test", "admin-demo-ribambelle")  # staff pages, and the configuration
    est = db.exec(select(Establishment)).first()
    period = db.exec(select(Period).where(Period.establishment_id == est.id)).first()
    invoice = db.exec(select(Invoice)).first()

    request = db.exec(select(ChangeRequest)).first()
    for path, name in (("/agent/", "dossiers à valider"), (f"/agent/demandes/{request.id}", "demande de modification"),
                       ("/agent/reservations", "demandes de réservation"),
                       (f"/agent/presences?etablissement={est.id}&jour={period.start_date.isoformat()}", "liste de présence"),
                       ("/agent/facturation", "facturation"), (f"/agent/factures/{invoice.id}", "facture (régie)"),
                       ("/page-qui-n-existe-pas", "page introuvable"), ("/accessibilite", "déclaration d'accessibilité"),
                       ("/admin/", "configuration"), (f"/admin/etablissements/{est.id}", "établissement"),
                       (f"/admin/etablissements/{est.id}/unites/nouvelle", "nouvelle unité"),
                       (f"/admin/etablissements/{est.id}/inscriptions", "inscriptions"),
                       ("/agent/familles?q=martin", "familles"), ("/agent/familles/1", "famille"),
                       (f"/admin/periodes/{period.id}", "période"), (f"/admin/etablissements/{est.id}/periodes/nouvelle",
                                                                     "nouvelle période"),
                       ("/admin/tranches", "tranches de QF"), ("/admin/unites/1", "unité avec tarifs"),
                       ("/admin/comptes", "comptes"), ("/admin/comptes/nouveau", "nouveau compte"),
                       ("/admin/familles/nouvelle", "nouvelle famille"), ("/documents/a-valider", "documents à valider"),
                       ("/inscriptions/a-traiter", "demandes d'inscription"), ("/admin/documents", "documents demandés")):
        page.goto(path)
        check(page, name, found)
    page.goto(f"/agent/demandes/{request.id}")
    page.get_by_role("button", name="Refuser").click()
    check(page, "demande de modification (erreur)", found)
    page.goto("/admin/etablissements/nouveau")
    page.get_by_role("button", name="Enregistrer").click()
    check(page, "nouvel établissement (erreurs)", found)
    page.goto(f"/admin/periodes/{period.id}")
    page.get_by_label("Dernier jour").fill(period.start_date.isoformat())  # removes booked days: asks first
    page.get_by_label("Fermeture des réservations").fill(f"{period.start_date}T08:00")
    page.get_by_role("button", name="Enregistrer", exact=True).click()
    expect(page.get_by_role("button", name="Confirmer et prévenir les familles")).to_be_visible()
    check(page, "période (confirmation)", found)
    assert found == {}, "\n".join(f"{k}: {v}" for k, v in found.items())


@pytest.mark.backends("sqlite")  # markup, whatever the database (the statement is made so: make accessibility)
@pytest.mark.parametrize("width", [320])
def test_pages_reflow_at_320_px_without_horizontal_scrolling(browser, live_server, db, width):
    """RGAA 10.11: at 320 px (or 200 % zoom on 640 px), only the planning grid scrolls sideways."""
    context = browser.new_context(base_url=live_server, locale="fr-FR", viewport={"width": width, "height": 640})
    page = context.new_page()
    lea = db.exec(select(Child).where(Child.first_name == "Léa")).one()
    est = db.exec(select(Establishment)).first()
    period = db.exec(select(Period).where(Period.establishment_id == est.id)).first()
    accounts = [
        ("parent@demo.test", "parent-demo-ribambelle",
         ["/", "/compte/famille/modifier", "/enfants/ajouter", f"/enfants/{lea.id}", "/reservations/nouvelle",
          f"/reservations/planning/{lea.id}/{period.id}", "/reservations/absence", "/reservations/legende",
          f"/factures/{db.exec(select(Invoice)).first().id}", f"/reservations/{db.exec(select(Reservation)).first().id}",
          "/factures/attestations", "/documents/", "/inscriptions/nouvelle"]),
        ("agent@demo.test", "agent-demo-ribambelle",
         ["/agent/", "/agent/reservations", f"/agent/presences?etablissement={est.id}&jour={period.start_date}",
          "/agent/facturation", f"/agent/factures/{db.exec(select(Invoice)).first().id}", "/accessibilite",
          "/agent/familles", "/documents/a-valider", "/inscriptions/a-traiter"]),
        ("admin@demo.test", "admin-demo-ribambelle",
         [f"/admin/periodes/{period.id}", "/admin/comptes", "/admin/tranches", "/admin/unites/1",
          f"/admin/etablissements/{est.id}/inscriptions", "/admin/documents"]),
    ]
    too_wide, skipped_levels, untitled, console = {}, {}, {}, []
    # The pages keep their CSP here: whatever it refuses (an inline style, a script) is said in the console.
    page.on("console", lambda message: console.append(f"{page.url}: {message.text}") if message.type in ("error", "warning") else None)
    for email, password, paths in accounts:
        login(page, email, password)
        for path in paths:
            page.goto(path)
            page.wait_for_load_state("load")
            width_seen = page.evaluate("document.documentElement.scrollWidth")
            if width_seen > width:
                too_wide[path] = width_seen
            # RGAA 9.1: headings in order, whatever is folded away (a legend, a dialog): h1, then h2, never h1 → h3
            levels = page.evaluate("[...document.querySelectorAll('main h1, main h2, main h3, main h4, main h5, main h6')]"
                                   ".map(h => +h.tagName[1])")
            jumps = [(a, b) for a, b in zip([1] + levels, levels) if b > a + 1]
            if jumps or levels[:1] != [1]:
                skipped_levels[path] = levels
            # RGAA 5.4: every data table has its title (caption)
            if page.locator("main table:not(:has(caption))").count():
                untitled[path] = page.locator("main table:not(:has(caption))").count()
        page.goto("/")
        page.get_by_role("button", name="Se déconnecter", exact=True).click()
    context.close()
    assert too_wide == {}
    assert skipped_levels == {}
    assert untitled == {}
    assert [line for line in console if "Content Security Policy" in line or "Refused" in line] == []


def test_session_warning_lets_the_parent_extend_the_session(browser, live_server, make_app):
    """RGAA 13.1: two minutes before the 30-minute idle limit a warning opens; its button extends."""
    context = browser.new_context(base_url=live_server, locale="fr-FR")
    page = context.new_page()
    page.clock.install()
    login(page, DEMO_PARENT)
    page.wait_for_load_state("load")
    warning = page.get_by_role("dialog", name="Votre session va bientôt expirer")
    expect(warning).to_be_hidden()
    page.clock.run_for(29 * 60 * 1000)  # 28 minutes idle: the warning opens (30-minute sessions)
    expect(warning).to_be_visible()
    warning.get_by_role("button", name="Prolonger la session").click()
    expect(warning).to_be_hidden()
    context.close()


def test_extend_session_route(client, auth):
    auth.login(DEMO_PARENT)
    token = csrf_from(client.get("/compte/mot-de-passe/modifier").get_data(as_text=True))
    with client.raw.session_transaction() as sess:
        sess["seen_at"] = int(time.time()) - 29 * 60
    response = client.post("/session/prolonger", data={"csrf_token": token}, headers={"HX-Request": "true"})
    assert response.status_code == 204
    with client.raw.session_transaction() as sess:
        assert int(time.time()) - sess["seen_at"] < 5


def test_whole_booking_journey_with_the_keyboard_only(browser, live_server, db):
    context = browser.new_context(base_url=live_server, locale="fr-FR", viewport={"width": 1024, "height": 800})
    page = context.new_page()
    page.goto("/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Aller au contenu")
    assert skip.evaluate("e => e === document.activeElement") and skip.is_visible()
    tab_to(page, page.get_by_label("Identifiant (adresse mail)"))
    page.keyboard.type("parent@demo.test")
    page.keyboard.press("Tab")
    page.keyboard.type("parent-demo-ribambelle")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Mon compte famille")).to_be_visible()
    page.wait_for_load_state("load")

    tab_to(page, page.get_by_role("link", name="Nouvelle réservation"))
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Nouvelle réservation")
    expect(dialog).to_be_visible()
    for _ in range(12):  # the modal window keeps the focus inside
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.closest('dialog') !== null || document.activeElement === document.body")
    # Each choice redraws the window (htmx) with the next step below; the focus stays on the choice
    # (RGAA 7.4: no change of context on a radio, arrows only move between its options). Wait for
    # the redraw before the next key, or the key would land in the window being replaced.
    def choose(key):  # the key, then the window redrawn with its answer (a page's "networkidle" is long past)
        with page.expect_response(lambda r: "/reservations/nouvelle?" in r.url) as answer:
            page.keyboard.press(key)
        answer.value.finished()
        page.wait_for_function("() => !document.querySelector('#new-reservation-body.htmx-request, .htmx-settling')")

    tab_to(page, dialog.get_by_label("Léa Martin"))
    choose("Space")
    expect(dialog.get_by_text("2. L'établissement")).to_be_visible(timeout=15000)
    expect(dialog.get_by_label("Léa Martin")).to_be_focused()
    choose("ArrowDown")
    expect(dialog.get_by_label("Hugo Martin")).to_be_checked()
    expect(dialog.get_by_label("Hugo Martin")).to_be_focused()
    choose("ArrowUp")
    expect(dialog.get_by_label("Léa Martin")).to_be_checked()
    expect(dialog.get_by_label("Léa Martin")).to_be_focused()
    lutins = dialog.get_by_label("Accueil de loisirs Les Lutins")
    expect(lutins).to_be_checked()  # Hugo's only centre, ticked for him, is Léa's too: kept
    tab_to(page, lutins)
    choose("ArrowDown")  # the school instead, then back
    expect(dialog.get_by_label("Périscolaire école Jules-Ferry")).to_be_checked()
    expect(dialog.get_by_label("Périscolaire école Jules-Ferry")).to_be_focused()
    choose("ArrowUp")
    expect(dialog.get_by_text("3. La période")).to_be_visible(timeout=15000)
    expect(dialog.get_by_label("Accueil de loisirs Les Lutins")).to_be_focused()
    expect(dialog.locator("input[name=periode]")).to_have_count(1)
    expect(dialog.locator("input[name=periode]")).to_be_checked()  # the only open period comes ticked
    tab_to(page, dialog.get_by_role("button", name="Continuer"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Planning de Léa Martin")).to_be_visible(timeout=15000)
    page.wait_for_load_state("load")

    cell = page.locator("td.cell--available button").first
    cell_id = cell.locator("xpath=..").get_attribute("id")
    tab_to(page, cell)
    page.keyboard.press("Enter")
    expect(page.locator(f"#{cell_id}")).to_have_class(re.compile("cell--selected"))
    expect(page.locator("#planning-live")).to_contain_text("sélectionné")  # said by the live region

    tab_to(page, page.locator(".planning-bar summary", has_text="Légende"))
    page.keyboard.press("Enter")
    expect(page.locator(".planning-bar .legend-panel")).to_be_visible()

    tab_to(page, page.locator("summary", has_text="Repas"))
    page.keyboard.press("Enter")
    auto_link = page.locator("details.unit-menu[open]").get_by_role("link", name="Sélection automatique des jours")
    tab_to(page, auto_link)
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    assert auto_link.evaluate("e => e === document.activeElement")  # the focus comes back

    tab_to(page, page.get_by_role("link", name="Valider le planning"))
    page.keyboard.press("Enter")
    confirm = page.get_by_role("button", name="Confirmer la réservation")
    tab_to(page, confirm)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Votre réservation est enregistrée")).to_be_visible()
    tab_to(page, page.get_by_role("link", name="Terminer"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Mon compte famille")).to_be_visible()
    page.wait_for_load_state("load")

    invoice = db.exec(select(Invoice)).first()
    view = page.get_by_role("link", name=f"Voir la facture {invoice.number}")
    tab_to(page, view)
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog", name=f"Facture {invoice.number}")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    assert view.evaluate("e => e === document.activeElement")
    context.close()


def test_accessibility_statement_is_linked_from_every_footer(client, auth):
    for path in ("/", "/identifiant-oublie"):
        assert 'href="/accessibilite"' in client.get(path).get_data(as_text=True)
    page = client.get("/accessibilite").get_data(as_text=True)
    status = accessibility.audit(accessibility.load_results()).status  # from the committed run and grid
    assert "Déclaration d'accessibilité" in page and f"<strong>{status}</strong>" in page
    assert f"Accessibilité : {status}</a>" in page  # the footer says it too
    assert "Amélioration et contact" in page and "Défenseur des droits" in page
    auth.login("agent@demo.test")
    assert 'href="/accessibilite"' in client.get("/agent/").get_data(as_text=True)


def test_statement_says_only_what_the_published_run_checked(client, tmp_path, monkeypatch):
    results = tmp_path / "accessibilite.json"
    monkeypatch.setattr(accessibility, "RESULTS_FILE", results)
    assert "Aucune série complète de contrôles automatiques" in page_text(client.get("/accessibilite"))
    keyboard = "tests/test_accessibility.py::test_whole_booking_journey_with_the_keyboard_only"
    accessibility.save_results(results, {"Connexion": {"path": "", "violations": 0}}, [keyboard])
    page = page_text(client.get("/accessibilite"))
    assert accessibility.CHECKS[keyboard] in page and "1 pages et fenêtres contrôlées" in page
    # that check was not in the run: not claimed
    assert accessibility.CHECKS["tests/test_booking_journey.py::test_whole_booking_with_javascript_off"] not in page
    results.write_text(results.read_text().replace('"complete": true', '"complete": false'))
    assert "Aucune série complète de contrôles automatiques" in page_text(client.get("/accessibilite"))


def test_a_partial_run_publishes_nothing(tmp_path):
    """Only some checks selected: the statement's results file is not written."""
    target = tmp_path / "accessibilite.json"
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--backends", "sqlite",
                          "tests/test_accessibility.py::test_extend_session_route"],
                         cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True,
                         env=dict(os.environ, RIBAMBELLE_A11Y_RESULTS=str(target)))
    assert run.returncode == 0, run.stdout[-2000:]
    assert "1 passed" in run.stdout and not target.exists()


def test_the_audit_grid_holds_every_rgaa_criterion_with_its_proof():
    criteria = accessibility.grid()
    per_theme = {1: 9, 2: 2, 3: 3, 4: 13, 5: 8, 6: 2, 7: 5, 8: 10, 9: 4, 10: 14, 11: 13, 12: 11, 13: 12}  # RGAA 4.1
    assert len(criteria) == 106 and len({c.number for c in criteria}) == 106
    assert {t: sum(1 for c in criteria if c.theme == t) for t in per_theme} == per_theme
    assert {c.status for c in criteria} <= {"C", "NC", "NA"}
    for c in criteria:
        assert c.proof.strip(), c.number  # every verdict says why
        if c.test:  # a claim by test: a test the statement names, which exists
            assert c.test in accessibility.CHECKS, c.number
            path, name = c.test.split("::")
            assert f"def {name}(" in (Path(__file__).resolve().parent.parent / path).read_text(), c.test
        assert c.status != "NC" or not c.test, c.number  # a test proves conformity, never its absence


def test_the_statement_gives_the_rate_only_from_a_complete_published_run(client, tmp_path, monkeypatch):
    results = tmp_path / "accessibilite.json"
    monkeypatch.setattr(accessibility, "RESULTS_FILE", results)
    audit = accessibility.audit({"checks": list(accessibility.CHECKS)})
    conforming, failing = audit.count("C"), audit.count("NC")
    rate = int(100 * conforming / (conforming + failing))
    accessibility.save_results(results, {"Connexion": {"path": "", "violations": 0}}, sorted(accessibility.CHECKS))
    page = page_text(client.get("/accessibilite"))
    assert f"révèle que <strong>{rate} % des critères du RGAA version 4.1</strong>" in page
    assert "<strong>partiellement conforme</strong>" in page if 50 <= rate < 100 else "<strong>non conforme</strong>" in page
    for c in audit.failing():  # each non-conformity by its criterion, with why
        assert f"Critère {c.number} — {c.title} {c.proof}" in page
    for words in ("Défenseur des droits", "Libre réponse 71120", "Schéma pluriannuel", "Technologies utilisées",
                  "Environnement de test", "320 × 256 pixels (zoom à 400 %)", "Dérogations pour charge disproportionnée"):
        assert words in page
    assert "200 %" not in page.split("Environnement de test")[1].split("</p>")[0]  # 320 px is 400 %, not 200 %
    # One test the grid relies on missing from the published run: no rate, « non conforme ».
    accessibility.save_results(results, {}, sorted(accessibility.CHECKS)[1:])
    page = page_text(client.get("/accessibilite"))
    assert "<strong>non conforme</strong>" in page and "révèle que" not in page


def test_the_attendance_list_shows_where_the_keyboard_is(browser, live_server, db):
    """The presence buttons are radios drawn as labels: the focused one gets the yellow ring and its dark
    edge (yellow alone is 1.64:1 on white)."""
    est = db.exec(select(Establishment).where(Establishment.name == "Accueil de loisirs Les Lutins")).one()
    booked = db.exec(select(Booking).join(Unit, Unit.id == Booking.unit_id)
                     .where(Unit.establishment_id == est.id, Booking.status == "accepted").order_by(Booking.day)).first()
    context = browser.new_context(base_url=live_server, locale="fr-FR")
    page = context.new_page()
    login(page, "agent@demo.test", "agent-demo-ribambelle")
    page.goto(f"/agent/presences?etablissement={est.id}&jour={booked.day.isoformat()}")
    radio = page.locator("fieldset.presence input").first
    tab_to(page, radio)
    ring = radio.evaluate("e => getComputedStyle(e.nextElementSibling).boxShadow")
    assert "rgb(26, 26, 26)" in ring, ring
    context.close()
