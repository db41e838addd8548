"""Guide section 9 in Chromium: a cancellation request from the family space to "Terminer"."""
import re
from datetime import date

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from models import Booking, Child, Reservation, Unit
from tests.factories import DEMO_CENTRE, DEMO_CHILD, DEMO_PARENT, login, open_planning_from_the_window

pytestmark = pytest.mark.demo  # walks the demo town as a visitor of `make run` would


def test_cancellation_journey(page, db):
    login(page, DEMO_PARENT)
    open_planning_from_the_window(page, "Demande d'annulation", "Demande d'annulation — planning de Léa Martin",
                                  child=DEMO_CHILD, centre=DEMO_CENTRE)

    # the demo's first accepted day, a week or two ahead: pick its month in the month list
    lea = db.exec(select(Child).where(Child.first_name == "Léa")).one()
    booking = db.exec(select(Booking).where(Booking.child_id == lea.id, Booking.status == "accepted",
                                            Booking.day >= date.today()).order_by(Booking.day)).first()
    unit = db.get(Unit, booking.unit_id)
    page.get_by_label("Mois", exact=True).select_option(f"{booking.day:%Y-%m}")
    # The month is redrawn by htmx even when it was already shown: a click before the redraw lands would
    # be undone by it (CI, loaded machine). Wait until no request is in flight.
    page.wait_for_load_state("networkidle")
    cell_id = f"cell-{booking.day.isoformat()}-{unit.code}"
    expect(page.locator(f"#{cell_id}")).to_have_class(re.compile("cell--booked"))
    page.locator(f"#{cell_id} button").click()
    expect(page.locator(f"#{cell_id}")).to_have_class(re.compile("cell--cancel_selected"))
    expect(page.locator("#planning-live")).to_contain_text("annulation sélectionnée")
    page.locator(f"#{cell_id} button").click()  # a second click keeps the day
    expect(page.locator(f"#{cell_id}")).to_have_class(re.compile("cell--booked"))
    page.locator(f"#{cell_id} button").click()
    expect(page.locator("#planning-counter")).to_contain_text("1 case à annuler")

    page.get_by_role("link", name="Valider le planning").click()
    expect(page.get_by_role("heading", name="Vérifiez les jours d'annulation")).to_be_visible()
    page.get_by_role("button", name="Confirmer la demande d'annulation").click()
    expect(page.get_by_role("heading", name="Votre demande d'annulation est enregistrée")).to_be_visible()
    expect(page.get_by_text("Annulation acceptée").first).to_be_visible()
    page.get_by_role("link", name="Terminer").click()
    expect(page.get_by_role("heading", name="Mon compte famille")).to_be_visible()
    expect(page.get_by_role("cell", name=re.compile("Demande d'annulation"))).to_be_visible()
    assert db.exec(select(Reservation).where(Reservation.kind == "cancellation")).one().status == "accepted"
    assert page.console_errors == []
