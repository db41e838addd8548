"""Issue 6's journey in Chromium: an admin creates an establishment, a unit with prices, a period with
deadlines, enrols a child; the parent then books a day of it."""
import re
from datetime import date, timedelta

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from models import Booking, Child, Period, Price, Unit
from tests.factories import DEMO_PARENT, login

pytestmark = pytest.mark.demo  # walks the demo town as a visitor of `make run` would


def test_admin_configures_a_new_centre_and_the_parent_books_it(page, db):
    login(page, "admin@demo.test", "admin-demo-ribambelle")
    page.get_by_role("link", name="Configuration").click()
    page.get_by_role("link", name="Nouvel établissement").click()
    page.get_by_label("Nom", exact=True).fill("Accueil de loisirs Les Cigales")
    page.get_by_label("Accueil de loisirs", exact=True).check()
    page.get_by_label("Adresse", exact=True).fill("8 allée des Cigales")
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.get_by_text("L'établissement « Accueil de loisirs Les Cigales » est créé.")).to_be_visible()

    page.get_by_role("link", name="Nouvelle unité").click()
    page.get_by_label("Nom de l'unité").fill("Journée")
    page.get_by_label("Capacité (places par jour)").fill("12")
    for label, amount in (("QF de 0 à 450 €", "8,00"), ("QF de 451 à 800 €", "10,50"),
                          ("QF de 801 à 1200 €", "12"), ("QF à partir de 1201 €", "14,00")):
        page.get_by_label(label).fill(amount)
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.get_by_text("L'unité « Journée » est enregistrée.")).to_be_visible()

    start = date.today() + timedelta(days=21)
    start += timedelta(days=(7 - start.weekday()) % 7)  # a Monday, three weeks ahead
    end = start + timedelta(days=11)
    page.get_by_role("link", name="Nouvelle période").click()
    page.get_by_label("Nom de la période").fill("Vacances des Cigales")
    page.get_by_label("Premier jour").fill(start.isoformat())
    page.get_by_label("Dernier jour").fill(end.isoformat())
    page.get_by_label("Ouverture des réservations").fill(f"{date.today() - timedelta(days=1)}T08:00")
    page.get_by_label("Fermeture des réservations").fill(f"{start - timedelta(days=2)}T18:00")
    page.get_by_label("Acceptation immédiate à partir de (jours avant)").fill("5")
    page.get_by_label("Délai minimum de réservation (jours avant)").fill("3")
    page.get_by_label("Mercredi (Journée)").uncheck()
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.get_by_text("La période « Vacances des Cigales » est enregistrée.")).to_be_visible()
    expect(page.get_by_role("heading", name="Jours fermés")).to_be_visible()

    page.get_by_role("link", name="Accueil de loisirs Les Cigales").click()
    page.get_by_role("link", name="Inscriptions des enfants").click()
    page.get_by_label("Rechercher un enfant").fill("Léa")
    page.get_by_role("button", name="Rechercher").click()
    lea = db.exec(select(Child).where(Child.first_name == "Léa")).one()
    expect(page.get_by_label("Enfant", exact=True).locator("option")).to_have_text([re.compile("^Martin Léa")])
    page.get_by_label("Enfant", exact=True).select_option(value=str(lea.id))
    page.get_by_role("button", name="Inscrire", exact=True).click()
    expect(page.get_by_text("1 enfant inscrit à Accueil de loisirs Les Cigales.")).to_be_visible()
    page.get_by_role("button", name="Se déconnecter", exact=True).click()

    login(page, DEMO_PARENT)
    page.wait_for_load_state("load")
    page.get_by_role("link", name="Nouvelle réservation").click()
    dialog = page.get_by_role("dialog", name="Nouvelle réservation")
    dialog.get_by_label("Léa Martin").check()
    expect(dialog.get_by_text("2. L'établissement")).to_be_visible()
    dialog.get_by_label("Accueil de loisirs Les Cigales").check()
    expect(dialog.get_by_text("3. La période")).to_be_visible()
    dialog.get_by_label(re.compile("Vacances des Cigales")).check()
    dialog.get_by_role("button", name="Continuer").click()
    expect(page.get_by_role("heading", name="Planning de Léa Martin")).to_be_visible()
    page.goto(page.url.split("?")[0] + f"?mois={start:%Y-%m}")  # the month the period starts in
    wednesday = start + timedelta(days=2)
    expect(page.locator(f"#cell-{(wednesday - timedelta(days=1)).isoformat()}-journee")).to_be_visible()
    expect(page.locator(f"[id^=cell-{wednesday.isoformat()}]")).to_have_count(0)  # Wednesday is not offered: no row
    cell = page.locator("td.cell--available").first
    cell_id = cell.get_attribute("id")
    cell.get_by_role("button").click()
    expect(page.locator(f"#{cell_id}")).to_have_class(re.compile("cell--selected"))
    page.get_by_role("link", name="Valider le planning").click()
    page.get_by_role("button", name="Confirmer la réservation").click()
    expect(page.get_by_role("heading", name="Votre réservation est enregistrée")).to_be_visible()

    unit = db.exec(select(Unit).where(Unit.label == "Journée", Unit.capacity == 12)).one()
    booking = db.exec(select(Booking).where(Booking.child_id == lea.id, Booking.unit_id == unit.id)).one()
    assert start <= booking.day <= end and booking.day != wednesday and booking.status == "accepted"
    period = db.exec(select(Period).where(Period.name == "Vacances des Cigales")).one()
    assert (period.auto_accept_days, period.min_days) == (5, 3)
    assert sorted(p.amount_cents for p in db.exec(select(Price).where(Price.unit_id == unit.id))) == [800, 1050, 1200, 1400]
    assert page.console_errors == []
