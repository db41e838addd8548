"""Shared custody (garde alternée): a child in two households, each booking, paying and seeing only its
own days, the child never booked twice for one day and unit, even by both at the same second; agents
link the second household; the attendance list shows the pick-up persons of the household of the day."""
import re
from datetime import date, datetime, timedelta

import pytest
from icalendar import Calendar
from playwright.sync_api import expect
from sqlmodel import select

from db import writing_session
from models import (
    Booking,
    Child,
    ChildHousehold,
    Draft,
    DraftLine,
    Family,
    Invoice,
    OutboxMail,
    Period,
    Reservation,
    User,
)
from services import attendance, billing, households, planning
from services import family as family_service
from tests.conftest import csrf_from, page_text
from tests.factories import (
    AGENT,
    NOW,
    OTHER_PARENT,
    PARENT,
    at_once,
    bookable_day,
    centre,
    child,
    login,
    open_planning_from_the_window,
    planning_url,
    post_cell,
    units,
    violations,
)

DAY = date(2027, 7, 20)


def family(db, name):
    db.expire_all()
    return db.exec(select(Family).where(Family.name == name)).one()


def agent_id(db):
    return db.exec(select(User.id).where(User.email == AGENT)).one()


def first_login(db, name):
    return db.exec(select(User.id).where(User.family_id == family(db, name).id).order_by(User.id)).first()


@pytest.fixture
def shared(app, db):
    """Zoé (file of the Durand family) also belongs to the Haddad household, Rayan's."""
    with app.test_request_context():
        households.link(db, agent_id(db), child(db), family(db, "Haddad"))
    return child(db)


def confirm_as(app, name, child_id, period_id, now=NOW):
    """The household ``name``'s first parent confirms its draft of the child."""
    engine = app.extensions["ribambelle.engine"]
    with writing_session(engine) as s:
        fam = s.exec(select(Family).where(Family.name == name)).one()
        c, period = s.get(Child, child_id), s.get(Period, period_id)
        draft, _ = planning.recap(s, c, period, now, family_id=fam.id)
        revision, user = draft.revision, s.exec(select(User.id).where(User.family_id == fam.id)).first()
    with writing_session(engine) as w:
        return planning.confirm(w, user, w.get(Child, child_id), w.get(Period, period_id), revision, now, fam.id)


def toggle_as(db, name, period, code, day, mode="book"):
    return planning.toggle(db, child(db), period, units(db)[code].id, day, NOW, mode, family_id=family(db, name).id)


# --- booking: each household its own draft and days ----------------------------------------------------


def test_each_household_books_on_its_own_draft_and_sees_the_others_day_locked(app, db, summer, shared):
    toggle_as(db, "Haddad", summer, "matinee", DAY)
    toggle_as(db, "Durand", summer, "repas", DAY)
    drafts = db.exec(select(Draft).where(Draft.child_id == shared.id)).all()
    assert sorted(d.family_id for d in drafts) == sorted([family(db, "Durand").id, family(db, "Haddad").id])
    reservation = confirm_as(app, "Haddad", shared.id, summer.id)
    assert reservation.family_id == family(db, "Haddad").id
    booking = db.exec(select(Booking).where(Booking.child_id == shared.id)).one()
    assert booking.family_id == family(db, "Haddad").id and booking.unit_id == units(db)["matinee"].id
    # the Durand household's selection is untouched and its own; the Haddad day is locked for it
    durand = planning.load_planning(db, child(db), summer, [DAY], NOW, family_id=family(db, "Durand").id)
    assert [(u, d) for u, d in durand.draft_lines] == [(units(db)["repas"].id, DAY)]
    cell = durand.cell(durand.unit(units(db)["matinee"].id), DAY)
    assert cell.state == "other" and not cell.clickable and cell.label == "Réservé par l'autre foyer"
    # a whole day excludes the morning: locked for the same reason, without naming what the other booked
    assert durand.cell(durand.unit(units(db)["journee"].id), DAY).state == "other"
    with pytest.raises(planning.PlanningError, match="autre foyer"):
        toggle_as(db, "Durand", summer, "matinee", DAY)
    haddad = planning.load_planning(db, child(db), summer, [DAY], NOW, family_id=family(db, "Haddad").id)
    assert haddad.cell(haddad.unit(units(db)["matinee"].id), DAY).state == "booked"
    assert haddad.draft_lines == {}


def test_a_household_cannot_cancel_the_other_households_day(app, db, summer, shared):
    toggle_as(db, "Haddad", summer, "matinee", DAY)
    confirm_as(app, "Haddad", shared.id, summer.id)
    with pytest.raises(planning.PlanningError):
        toggle_as(db, "Durand", summer, "matinee", DAY, mode="cancel")
    durand = planning.load_planning(db, child(db), summer, [DAY], NOW, "cancel", family_id=family(db, "Durand").id)
    assert durand.cancel_outcome(durand.unit(units(db)["matinee"].id), DAY) is None
    assert planning.absence_options(db, family(db, "Durand").id, DAY) == []
    assert [c for c, _, _ in planning.absence_options(db, family(db, "Haddad").id, DAY)] == [shared.id]
    assert db.exec(select(Booking).where(Booking.child_id == shared.id)).one().cancel_line_id is None


def test_a_day_booked_by_the_other_household_after_the_selection_is_refused_at_confirmation(app, db, summer, shared):
    toggle_as(db, "Durand", summer, "matinee", DAY)
    toggle_as(db, "Haddad", summer, "matinee", DAY)
    confirm_as(app, "Haddad", shared.id, summer.id)
    _, lines = planning.recap(db, child(db), summer, NOW, family_id=family(db, "Durand").id)
    assert [(line.outcome, line.note) for line in lines] == [(None, "Réservé par l'autre foyer entre-temps")]
    reservation = confirm_as(app, "Durand", shared.id, summer.id)
    db.expire_all()
    line = db.get(Reservation, reservation.id).lines[0]
    assert (line.state, line.note) == ("refused", "Réservé par l'autre foyer entre-temps")
    assert [b.family_id for b in db.exec(select(Booking).where(Booking.child_id == shared.id))] == [family(db, "Haddad").id]


def test_two_households_confirming_one_day_at_the_same_second_book_it_once(app, db, summer, shared):
    """Both households' confirmations run at once (threads, SQLite and PostgreSQL): one booking, the other
    line refused as the other household's, no error."""
    for name in ("Durand", "Haddad"):
        toggle_as(db, name, summer, "journee", DAY)
    results = at_once({name: (lambda name=name: confirm_as(app, name, shared.id, summer.id))
                       for name in ("Durand", "Haddad")})
    db.expire_all()
    bookings = db.exec(select(Booking).where(Booking.child_id == shared.id)).all()
    assert len(bookings) == 1
    states = {name: db.get(Reservation, r.id).lines[0] for name, r in results.items()}
    winner = next(name for name, line in states.items() if line.state == "accepted")
    loser = next(name for name in states if name != winner)
    assert bookings[0].family_id == family(db, winner).id
    assert (states[loser].state, states[loser].note) == ("refused", "Réservé par l'autre foyer entre-temps")
    assert planning.overbooked(db) == []


# --- billing and what each household sees --------------------------------------------------------------


def test_billing_goes_to_the_household_that_booked_at_its_own_qf(app, db, summer, shared):
    toggle_as(db, "Durand", summer, "matinee", date(2027, 7, 20))
    confirm_as(app, "Durand", shared.id, summer.id)
    toggle_as(db, "Haddad", summer, "matinee", date(2027, 7, 21))
    confirm_as(app, "Haddad", shared.id, summer.id)
    billing.run(app.extensions["ribambelle.engine"], date(2027, 7, 1), date(2027, 8, 2), mail=False)
    invoices = {i.family_id: i for i in db.exec(select(Invoice).where(Invoice.month == date(2027, 7, 1)))}
    durand, haddad = invoices[family(db, "Durand").id], invoices[family(db, "Haddad").id]
    # make_town's prices per bracket: matinée 4 € (QF ≤ 450, Haddad 380), 5 € (451-800, Durand 620)
    assert [(l.child_id, l.day, l.amount_cents) for l in durand.lines] == [(shared.id, date(2027, 7, 20), 500)]
    assert [(l.child_id, l.day, l.amount_cents) for l in haddad.lines] == [(shared.id, date(2027, 7, 21), 400)]


def test_each_household_sees_only_its_own_reservations_and_invoices(app, db, summer, shared, client, auth):
    toggle_as(db, "Durand", summer, "matinee", date(2027, 7, 20))
    durand_reservation = confirm_as(app, "Durand", shared.id, summer.id)
    toggle_as(db, "Haddad", summer, "matinee", date(2027, 7, 21))
    haddad_reservation = confirm_as(app, "Haddad", shared.id, summer.id)
    billing.run(app.extensions["ribambelle.engine"], date(2027, 7, 1), date(2027, 8, 2), mail=False)
    durand_invoice = db.exec(select(Invoice).where(Invoice.family_id == family(db, "Durand").id)).one()
    haddad_invoice = db.exec(select(Invoice).where(Invoice.family_id == family(db, "Haddad").id)).one()
    auth.login(OTHER_PARENT)
    home = page_text(client.get("/compte/"))
    assert "Zoé" in home and "Rayan" in home and "Noé" not in home
    assert haddad_reservation.number in home and durand_reservation.number not in home
    assert haddad_invoice.number in home and durand_invoice.number not in home
    assert client.get(f"/reservations/{haddad_reservation.id}").status_code == 200
    assert client.get(f"/reservations/{durand_reservation.id}").status_code == 404
    assert client.get(f"/factures/{durand_invoice.id}").status_code == 404
    assert client.get(f"/factures/{haddad_invoice.id}.pdf").status_code == 200
    assert client.get(f"/enfants/{child(db, 'Noé').id}").status_code == 404  # the Durand's other child
    zoe_page = page_text(client.get(f"/enfants/{shared.id}"))
    assert "garde alternée" in zoe_page and "Arachide" in zoe_page  # the record is shared
    assert "Marie Durand" not in zoe_page  # the Durand household's pick-up persons are not the Haddad's


def test_the_second_household_books_from_its_own_space_in_the_browser_flow(client, auth, db, app):
    est, period, unit_by_code = centre(db)
    with app.test_request_context():
        households.link(db, agent_id(db), child(db), family(db, "Haddad"))
    zoe = child(db)
    auth.login(OTHER_PARENT)
    day = bookable_day(db, period, unit_by_code["matinee"], zoe)
    response = post_cell(client, zoe, period, unit_by_code["matinee"], day)
    assert response.status_code == 200 and "sélectionné" in page_text(response)
    recap = client.get(f"/reservations/planning/{zoe.id}/{period.id}/recapitulatif")
    html = recap.get_data(as_text=True)
    revision = re.search(r'name="revision" value="(\d+)"', html).group(1)
    done = client.post(f"/reservations/planning/{zoe.id}/{period.id}/confirmer",
                       data={"csrf_token": csrf_from(html), "revision": revision})
    assert done.status_code == 302
    booking = db.exec(select(Booking).where(Booking.child_id == zoe.id)).one()
    assert booking.family_id == family(db, "Haddad").id
    auth.logout()
    auth.login(PARENT)  # the Durand household: the day is the other household's, and nothing more
    month = page_text(client.get(planning_url(zoe, period, day)))
    assert "Réservé par l'autre foyer" in month
    refused = post_cell(client, zoe, period, unit_by_code["matinee"], day)
    assert "autre foyer" in page_text(refused)
    assert db.exec(select(DraftLine).join(Draft).where(Draft.family_id == family(db, "Durand").id)).all() == []
    assert db.exec(select(Booking).where(Booking.family_id == family(db, "Durand").id)).all() == []


# --- agents, attendance, the shared record ---------------------------------------------------------------


def test_an_agent_links_a_child_to_a_new_household_whose_parent_is_invited(client, auth, db):
    auth.login(AGENT)
    zoe = child(db)
    page = client.get(f"/foyers/enfant/{zoe.id}")
    assert page.status_code == 200 and "Ouvrir le dossier du second foyer" in page_text(page)
    empty = client.post(f"/foyers/enfant/{zoe.id}/nouveau", data={"csrf_token": csrf_from(page.get_data(as_text=True))})
    assert empty.status_code == 422 and "Ce champ est obligatoire." in page_text(empty)
    assert db.exec(select(ChildHousehold)).all() == []
    form = {"csrf_token": csrf_from(page.get_data(as_text=True)), "foyer-name": "Martin", "foyer-title": "M.",
            "foyer-last_name": "Martin", "foyer-first_name": "Hugo", "foyer-phone_mobile": "06 11 22 33 44",
            "foyer-email": "hugo.martin@exemple.test"}
    done = client.post(f"/foyers/enfant/{zoe.id}/nouveau", data=form)
    assert done.status_code == 302
    martin = family(db, "Martin")
    assert [(h.child_id, h.family_id) for h in db.exec(select(ChildHousehold))] == [(zoe.id, martin.id)]
    mails = db.exec(select(OutboxMail).order_by(OutboxMail.id)).all()
    to_martin = [m.subject for m in mails if m.recipient == "hugo.martin@exemple.test"]
    assert any("Votre compte sur le portail famille" in s for s in to_martin)
    assert "Zoé est rattaché(e) à votre dossier" in to_martin
    assert any(m.recipient == PARENT and "garde alternée" in m.subject for m in mails)
    shown = page_text(client.get(f"/foyers/enfant/{zoe.id}"))
    assert "Famille Durand" in shown and "Famille Martin" in shown
    assert "Garde alternée" in page_text(client.get(f"/agent/familles/{martin.id}"))
    assert "Martin" in page_text(client.get("/agent/familles?q=Zoé"))  # found by the child it shares
    # a third household is refused
    third = client.post(f"/foyers/enfant/{zoe.id}/rattacher", data={"csrf_token": csrf_from(shown),
                                                                      "famille": family(db, "Haddad").id})
    assert third.status_code == 302
    assert "a déjà un second foyer" in page_text(client.get(third.headers["Location"]))
    assert len(db.exec(select(ChildHousehold)).all()) == 1


def test_unlinking_is_refused_while_the_household_holds_days_to_come(app, db, shared):
    est, period, unit_by_code = centre(db)
    day = bookable_day(db, period, unit_by_code["matinee"], shared)
    now = billing.utcnow()
    planning.toggle(db, shared, period, unit_by_code["matinee"].id, day, now, family_id=family(db, "Haddad").id)
    confirm_as(app, "Haddad", shared.id, period.id, now)
    with pytest.raises(households.HouseholdError, match="encore des jours réservés"):
        households.unlink(db, agent_id(db), child(db), family(db, "Haddad"))
    assert len(db.exec(select(ChildHousehold)).all()) == 1


def test_the_attendance_list_shows_the_pickup_persons_and_phones_of_the_household_of_the_day(app, db, summer, shared):
    link = db.exec(select(ChildHousehold)).one()
    link.pickup_persons = "Samir Haddad, oncle, 06 77 77 77 77"
    db.add(link)
    db.commit()
    toggle_as(db, "Haddad", summer, "matinee", date(2027, 7, 20))
    confirm_as(app, "Haddad", shared.id, summer.id)
    toggle_as(db, "Durand", summer, "matinee", date(2027, 7, 21))
    confirm_as(app, "Durand", shared.id, summer.id)

    def zoe_row(day):
        lists = attendance.sheet(db, summer.establishment_id, day)
        return next(r for unit_list in lists for r in unit_list.rows if r.child.id == shared.id)

    haddad_day, durand_day = zoe_row(date(2027, 7, 20)), zoe_row(date(2027, 7, 21))
    assert haddad_day.pickup == "Samir Haddad, oncle, 06 77 77 77 77" and "Nadia" in haddad_day.phones
    assert durand_day.pickup.startswith("Marie Durand") and "Anne" in durand_day.phones
    assert "Nadia" not in durand_day.phones


def test_a_change_of_the_shared_record_is_validated_once_and_told_to_both_households(app, db, shared):
    haddad = family(db, "Haddad")
    parent = db.exec(select(User).where(User.email == OTHER_PARENT)).one()
    after = family_service.child_snapshot(shared, family_service.household_link(db, shared, haddad.id))
    assert after["pickup_persons"] == ""  # the Haddad household's own list, not the Durand's
    after.update(allergies="Arachide, kiwi", pickup_persons="Samir Haddad, oncle")
    with app.test_request_context():
        req = family_service.request_child_change(db, parent, haddad, shared, after)
        agent = db.get(User, agent_id(db))
        assert family_service.validate(db, agent, req)
    db.expire_all()
    zoe = db.get(Child, shared.id)
    assert zoe.allergies == "Arachide, kiwi"
    assert zoe.pickup_persons.startswith("Marie Durand")  # the Durand household's list is untouched
    assert db.exec(select(ChildHousehold)).one().pickup_persons == "Samir Haddad, oncle"
    mails = {m.recipient: m for m in db.exec(select(OutboxMail))}
    assert mails[OTHER_PARENT].subject == "Votre modification a été validée"
    assert mails[PARENT].subject == "La fiche de Zoé a été modifiée"
    assert "Arachide, kiwi" in mails[PARENT].body_text and "Samir" not in mails[PARENT].body_text


def day_of(value):
    return value.date() if isinstance(value, datetime) else value


def test_each_household_has_its_own_calendar_link_of_its_own_days(app, db, summer, shared, client, auth):
    toggle_as(db, "Haddad", summer, "matinee", date(2027, 7, 20))
    confirm_as(app, "Haddad", shared.id, summer.id)
    toggle_as(db, "Durand", summer, "matinee", date(2027, 7, 21))
    confirm_as(app, "Durand", shared.id, summer.id)

    def feed_days(email):
        auth.login(email)
        url = re.search(r'id="feed-url" value="([^"]+)"', client.get(f"/enfants/{shared.id}").get_data(as_text=True)).group(1)
        auth.logout()
        path = url.split("://", 1)[1].split("/", 1)[1].replace("&amp;", "&")
        response = client.get("/" + path)
        assert response.status_code == 200
        return "/" + path, sorted(day_of(e.decoded("dtstart")) for e in Calendar.from_ical(response.data).walk("VEVENT"))

    haddad_url, haddad_days = feed_days(OTHER_PARENT)
    durand_url, durand_days = feed_days(PARENT)
    assert haddad_days == [date(2027, 7, 20)] and durand_days == [date(2027, 7, 21)]
    auth.login(OTHER_PARENT)
    page = client.get(f"/enfants/{shared.id}")
    client.post(f"/enfants/{shared.id}/agenda/renouveler", data={"csrf_token": csrf_from(page.get_data(as_text=True))})
    assert client.get(haddad_url).status_code == 404  # renewed: the old link stops
    assert client.get(durand_url).status_code == 200  # the other household's link still works
    forged = durand_url.split("?")[0] + f"?foyer={family(db, 'Durand').id}"
    assert client.get(forged).status_code == 404


# --- the journey -----------------------------------------------------------------------------------------


def test_a_second_household_books_its_week_on_a_phone(page, app, db):
    with app.test_request_context():
        households.link(db, agent_id(db), child(db), family(db, "Haddad"))
    page.set_viewport_size({"width": 360, "height": 780})
    login(page, OTHER_PARENT)
    expect(page.get_by_role("heading", name="Mon compte famille")).to_be_visible()
    open_planning_from_the_window(page)
    # the week after the first one that can be booked, on its month
    est, period, unit_by_code = centre(db)
    first = bookable_day(db, period, unit_by_code["matinee"], child(db), outcome="request")
    monday = first + timedelta(days=7 - first.weekday())
    page.goto(planning_url(child(db), period, monday))
    page.wait_for_load_state("load")
    # the automatic selection of the days of one week, from the unit's menu
    page.locator("summary", has_text="Matinée").click()
    page.locator("details.unit-menu[open]").get_by_role("link", name="Sélection automatique des jours").click()
    auto = page.get_by_role("dialog", name=re.compile("Sélection automatique des jours"))
    for day in ("Lundi", "Mardi", "Mercredi", "Jeudi", "Vendredi"):
        auto.get_by_label(day).check()
    auto.get_by_label("Uniquement sur la semaine affichée").check()
    auto.get_by_label("Semaine", exact=True).select_option(monday.isoformat())
    auto.get_by_role("button", name="Valider").click()
    expect(page.locator("#planning-live")).to_contain_text(re.compile(r"Matinée : [2-5] jours sélectionnés"))
    assert violations(page) == []
    page.get_by_role("link", name="Valider le planning").click()
    page.get_by_role("button", name="Confirmer la réservation").click()
    expect(page.get_by_role("heading", name="Votre réservation est enregistrée")).to_be_visible()
    haddad = family(db, "Haddad")
    held = db.exec(select(Booking).where(Booking.child_id == child(db).id)).all()
    assert held and {b.family_id for b in held} == {haddad.id}
    # the Durand household sees that week as the other household's
    page.context.clear_cookies()
    login(page, PARENT)
    zoe, period = child(db), db.get(Period, db.get(Reservation, db.exec(select(Reservation.id)).first()).period_id)
    page.goto(planning_url(zoe, period, held[0].day))
    expect(page.locator(f"#cell-{held[0].day.isoformat()}-matinee")).to_contain_text("Autre foyer")
    assert violations(page) == []
    assert page.console_errors == []
