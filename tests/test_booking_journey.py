"""The booking journey of the guide (section 7) in Chromium: with htmx, and with JavaScript off."""
import re

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from models import Booking, Child, Reservation
from tests.factories import DEMO_CENTRE, DEMO_CHILD, DEMO_PARENT, login, open_planning_from_the_window

pytestmark = pytest.mark.demo  # walks the demo town as a visitor of `make run` would


def next_month(page):
    before = page.locator("#planning-month caption").inner_text()
    page.get_by_role("link", name=re.compile("Mois suivant")).click()
    expect(page.locator("#planning-month caption")).not_to_have_text(before)


def test_whole_booking_with_htmx(page, db):
    login(page, DEMO_PARENT)
    open_planning_from_the_window(page, child=DEMO_CHILD, centre=DEMO_CENTRE)
    next_month(page)
    assert "mois=" in page.url  # the month is in the address: a reload shows the same month

    # one click on a free cell selects it, a second click clears it
    cell = page.locator("td.cell--available").filter(has=page.locator("button")).first
    cell_id = cell.get_attribute("id")
    cell.get_by_role("button").click()
    expect(page.locator(f"#{cell_id}")).to_have_class(re.compile("cell--selected"))
    expect(page.locator("#planning-live")).to_contain_text("sélectionné")
    expect(page.locator(f"#{cell_id} button")).to_be_focused()  # the focus stays on the redrawn cell
    page.locator(f"#{cell_id}").get_by_role("button").click()
    expect(page.locator(f"#{cell_id}")).to_have_class(re.compile("cell--available"))
    page.locator(f"#{cell_id}").get_by_role("button").click()

    # a bulk selection from the unit menu
    page.locator("summary", has_text="Matinée").click()
    page.locator("details.unit-menu[open]").get_by_role("button", name="Sélectionner les jours affichés à l'écran").click()
    expect(page.locator("#planning-live")).to_contain_text(re.compile(r"Matinée : \d+ jours sélectionnés"))

    # the automatic selection dialog, applied to the whole period
    page.locator("summary", has_text="Après-midi").click()
    page.locator("details.unit-menu[open]").get_by_role("link", name="Sélection automatique des jours").click()
    dialog = page.get_by_role("dialog", name=re.compile("Sélection automatique des jours"))
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Valider").click()
    expect(dialog.get_by_role("alert")).to_contain_text("Cochez au moins un jour de la semaine.")
    dialog.get_by_label("Mercredi").check()
    dialog.get_by_label("Sur toute la période").check()
    dialog.get_by_role("button", name="Valider").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page.locator("#planning-live")).to_contain_text(re.compile(r"Après-midi : \d+ jours? sélectionnés?"))

    # the legend names every state
    page.get_by_text("Légende", exact=True).click()
    expect(page.locator(".planning-bar .legend-panel")).to_contain_text("Verrouillé (délai dépassé)")

    page.get_by_role("link", name="Valider le planning").click()
    expect(page.get_by_role("heading", name="Vérifiez les jours de réservation")).to_be_visible()
    expect(page.get_by_role("link", name="Retour au planning")).to_be_visible()
    rows = page.locator("table tbody tr").count()
    page.get_by_role("button", name="Confirmer la réservation").click()
    expect(page.get_by_role("heading", name="Votre réservation est enregistrée")).to_be_visible()
    number = re.search(r"R-\d{4}-\d{6}", page.content()).group(0)
    page.get_by_role("link", name="Terminer").click()
    expect(page.get_by_role("cell", name=re.compile(f"Léa — {number}"))).to_be_visible()

    reservation = db.exec(select(Reservation).where(Reservation.number == number)).one()
    assert len(reservation.lines) == rows
    lea = db.exec(select(Child).where(Child.first_name == "Léa")).one()
    held = db.exec(select(Booking).where(Booking.child_id == lea.id)).all()
    assert len(held) >= rows
    assert page.console_errors == []

    # the detail of the reservation, and back
    page.get_by_role("link", name=f"Voir la réservation {number}").click()
    expect(page.get_by_role("heading", name="Détail de la réservation")).to_be_visible()
    page.get_by_role("link", name="Retour à l'accueil").click()
    expect(page.get_by_role("heading", name="Mon compte famille")).to_be_visible()


@pytest.fixture
def no_js_page(browser, live_server):
    context = browser.new_context(base_url=live_server, locale="fr-FR", java_script_enabled=False,
                                  viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.set_default_timeout(10000)
    yield page
    context.close()


def test_whole_booking_with_javascript_off(no_js_page, db):
    page = no_js_page
    before = len(db.exec(select(Reservation)).all())
    login(page, DEMO_PARENT)
    page.get_by_role("link", name="Nouvelle réservation").click()
    expect(page.get_by_role("heading", name="Nouvelle réservation")).to_be_visible()
    page.get_by_label("Léa Martin").check()
    page.get_by_role("button", name="Afficher les choix suivants").click()
    page.get_by_label("Accueil de loisirs Les Lutins").check()
    page.get_by_role("button", name="Afficher les choix suivants").click()
    page.locator("input[name=periode]").first.check()
    page.get_by_role("button", name="Continuer").click()
    expect(page.get_by_role("heading", name="Planning de Léa Martin")).to_be_visible()

    page.get_by_label("Mois", exact=True).select_option(index=1)
    page.get_by_role("button", name="Afficher").click()
    cell_id = page.locator("td.cell--available").first.get_attribute("id")
    page.locator(f"#{cell_id} button").click()
    expect(page.locator(f"#{cell_id}")).to_have_class(re.compile("cell--selected"))
    expect(page.get_by_role("status").first).to_contain_text("sélectionné")

    page.locator("summary", has_text="Repas").click()
    page.locator("details.unit-menu[open]").get_by_role("button", name="Sélectionner les jours affichés à l'écran").click()
    expect(page.get_by_role("status").first).to_contain_text(re.compile(r"Repas : \d+ jours sélectionnés"))

    page.locator("summary", has_text="Journée").click()
    page.locator("details.unit-menu[open]").get_by_role("link", name="Sélection automatique des jours").click()
    page.get_by_label("Vendredi").check()
    page.get_by_label("Uniquement sur la semaine affichée").check()
    page.get_by_role("button", name="Valider").click()
    expect(page.get_by_role("status").first).to_contain_text("Journée")

    page.get_by_role("link", name="Valider le planning").click()
    page.get_by_role("button", name="Confirmer la réservation").click()
    expect(page.get_by_role("heading", name="Votre réservation est enregistrée")).to_be_visible()
    page.get_by_role("link", name="Terminer").click()
    expect(page.get_by_role("heading", name="Mon compte famille")).to_be_visible()
    assert len(db.exec(select(Reservation)).all()) == before + 1


def test_back_after_a_month_change_and_after_the_window_shows_whole_pages(page, db):
    """htmx restores history by asking the page again (HX-History-Restore-Request): the whole page comes."""
    login(page, DEMO_PARENT)
    open_planning_from_the_window(page, child=DEMO_CHILD, centre=DEMO_CENTRE)
    first = page.locator("#planning-month caption").inner_text()
    next_month(page)
    page.go_back()
    expect(page.locator("#planning-month caption")).to_have_text(first)
    expect(page.get_by_role("heading", name="Planning de Léa Martin")).to_be_visible()
    menu = page.get_by_role("navigation", name="Menu principal")
    expect(menu.get_by_role("link", name="Mon compte famille")).to_be_visible()  # the site's header is there
    expect(page.get_by_role("contentinfo")).to_contain_text("Accessibilité")  # and its footer
    page.go_back()  # back over the window's "Continuer": the family space, whole
    expect(page.get_by_role("heading", name="Mon compte famille")).to_be_visible()
    expect(page.get_by_role("contentinfo")).to_contain_text("Accessibilité")
