"""The children's calendar: a private ICS feed per child ("Ajouter à mon agenda"), parsed back with
icalendar; its token renewed (the old link refused); nothing of health or money in it."""
import re
from datetime import datetime, time

from icalendar import Calendar
from sqlmodel import select

from models import Establishment, Unit
from tests.conftest import csrf_from, page_text
from tests.factories import OTHER_PARENT, TOWN, child, reservation_with_a_request, units


def feed_path(client, auth, db, name="Zoé"):
    auth.login()
    page = page_text(client.get(f"/enfants/{child(db, name).id}"))
    assert "Ajouter à mon agenda" in page and 'href="webcal://localhost/enfants/' in page
    url = re.search(r'id="feed-url" value="([^"]+)"', page).group(1)
    assert url.startswith("http://localhost/enfants/")  # BASE_URL, never the request's host
    return url.removeprefix("http://localhost"), page


def parsed(response) -> Calendar:
    assert response.status_code == 200 and response.mimetype == "text/calendar"
    return Calendar.from_ical(response.data)


def test_the_feed_lists_the_booked_days_with_hours_and_address_and_nothing_private(client, auth, db):
    made = units(db)
    made["matinee"].starts_at, made["matinee"].ends_at = time(8, 30), time(12, 0)
    db.add(made["matinee"])
    est = db.exec(select(Establishment).where(Establishment.name == TOWN)).one()
    est.address = "12 rue des Tilleuls, 00200 Saint-Essai"
    db.add(est)
    db.commit()
    reservation_with_a_request(db)  # two mornings accepted, one request, one whole day on the waiting list
    path, _ = feed_path(client, auth, db)
    auth.logout()
    calendar = parsed(client.get(path))  # no login: the link is the key
    assert str(calendar["X-WR-CALNAME"]) == "Planning de Zoé"
    events = calendar.walk("VEVENT")
    assert len(events) == 2  # the accepted days only
    first = events[0]
    start, end = first.decoded("DTSTART"), first.decoded("DTEND")
    assert isinstance(start, datetime) and (start.hour, start.minute) == (8, 30) and (end.hour, end.minute) == (12, 0)
    assert str(start.tzinfo) == "Europe/Paris" and calendar.walk("VTIMEZONE")
    assert "Matinée" in str(first["SUMMARY"]) and "12 rue des Tilleuls" in str(first["LOCATION"])
    body = client.get(path).get_data(as_text=True)
    for private in ("Arachide", "Trousse", "PAI", "Dr Roux", "€", "Durand"):
        assert private not in body


def test_a_booking_shows_in_the_feed_and_whole_days_without_hours(client, auth, db):
    path, _ = feed_path(client, auth, db)
    assert parsed(client.get(path)).walk("VEVENT") == []
    reservation_with_a_request(db)
    events = parsed(client.get(path)).walk("VEVENT")
    assert len(events) == 2 and not isinstance(events[0].decoded("DTSTART"), datetime)  # no hours set: all day


def test_a_renewed_link_refuses_the_old_one(client, auth, db):
    old, page = feed_path(client, auth, db)
    zoe = child(db, "Zoé")
    client.post(f"/enfants/{zoe.id}/agenda/renouveler", data={"csrf_token": csrf_from(page)})
    assert client.get(old).status_code == 404
    new, _ = feed_path(client, auth, db)
    assert new != old and client.get(new).status_code == 200
    assert client.get(new.replace(f"/enfants/{zoe.id}/", f"/enfants/{child(db, 'Noé').id}/")).status_code == 404
    assert client.get(f"/enfants/{zoe.id}/agenda/pas-le-bon-jeton.ics").status_code == 404


def test_another_family_cannot_renew_or_read_the_link(client, auth, db):
    path, _ = feed_path(client, auth, db)
    zoe = child(db, "Zoé")
    auth.logout()
    auth.login(OTHER_PARENT)
    page = page_text(client.get("/compte/"))
    assert client.post(f"/enfants/{zoe.id}/agenda/renouveler", data={"csrf_token": csrf_from(page)}).status_code == 404
    assert client.get(f"/enfants/{zoe.id}").status_code == 404
    assert client.get(path).status_code == 200  # the link itself still works: it is the family's to share


def test_the_admin_sets_a_units_hours(client, auth, db):
    auth.login("admin@tilleuls.test")
    unit = db.exec(select(Unit).where(Unit.code == "matinee")).one()
    form = {"label": unit.label, "position": str(unit.position), "capacity": str(unit.capacity)}
    wrong = page_text(client.submit(f"/admin/unites/{unit.id}", {**form, "starts_at": "12:00", "ends_at": "08:30"}))
    assert "L'heure de fin doit être après l'heure de début." in wrong
    half = page_text(client.submit(f"/admin/unites/{unit.id}", {**form, "starts_at": "08:30", "ends_at": ""}))
    assert "ou aucune des deux" in half
    client.submit(f"/admin/unites/{unit.id}", {**form, "starts_at": "08:30", "ends_at": "12:00"})
    db.refresh(unit)
    assert (unit.starts_at, unit.ends_at) == (time(8, 30), time(12, 0))
