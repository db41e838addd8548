"""What a period offers is kept in memory per process and reloaded as soon as any server changes it."""
import re
from datetime import date, timedelta

from sqlalchemy import event
from sqlmodel import select

from db import get_db
from models import ClosedDay, DaySlot, Draft, DraftLine, Period, PeriodUnit, utcnow
from services.planning import offer
from tests.conftest import Auth, Client, page_text
from tests.factories import ADMIN, HX, centre, child, csrf_from, planning_url, post_cell, weekday_ahead


def test_a_closed_day_added_on_another_server_shows_on_the_next_page(make_app, app, db):
    """Two app servers on one database: the parent's caches the offer, the admin's closes a day."""
    _, period, units = centre(db)
    day = weekday_ahead(12)
    parent = Client(app.test_client())
    Auth(parent).login()
    url = planning_url(child(db, "Zoé"), period, day)
    assert f'id="cell-{day.isoformat()}-matinee"' in page_text(parent.get(url))
    statements = []
    event.listen(app.extensions["ribambelle.engine"], "before_cursor_execute",
                 lambda *args: statements.append(args[2]))
    parent.get(url)
    assert not any("FROM closedday" in s for s in statements)  # from memory
    admin = Client(make_app().test_client())
    Auth(admin).login(ADMIN)
    admin.submit(f"/admin/periodes/{period.id}", {"fermeture-day": day.isoformat(), "fermeture-reason": "Grève"},
                 action=f"/admin/periodes/{period.id}/fermetures")
    assert db.exec(select(ClosedDay).where(ClosedDay.day == day)).one()
    page = page_text(parent.get(url))
    assert "Grève" in page  # the version moved: reloaded


def test_any_write_of_the_configuration_moves_the_version(db):
    before = offer.current_version(db)
    row = db.exec(select(PeriodUnit)).first()
    row.weekdays = "0123"
    db.add(row)
    db.commit()
    assert offer.current_version(db) == before + 1
    _, period, _ = centre(db)
    db.add(ClosedDay(period_id=period.id, day=period.start_date + timedelta(days=1), reason="Fermé"))
    db.commit()
    assert offer.current_version(db) == before + 2
    db.exec(select(PeriodUnit)).all()  # reading changes nothing
    db.commit()
    assert offer.current_version(db) == before + 2


def test_the_planning_columns_keep_their_short_names_for_the_phone(app, db, auth):
    """The offer in memory still gives each column the short name a 320 px screen shows."""
    _, period, units = centre(db)
    units["journee"].short_label = "Jour."
    db.add(units["journee"])
    db.commit()
    auth.login()
    page = page_text(auth.client.get(planning_url(child(db, "Zoé"), period, weekday_ahead(12))))
    assert '<span class="unit-full">Journée</span><span class="unit-short" aria-hidden="true">Jour.</span>' in page
    assert '<span class="unit-full">Après-midi</span><span class="unit-short" aria-hidden="true">Après-m.</span>' in page


def test_a_click_obeys_a_deadline_another_server_just_moved(make_app, app, db):
    """A click reads its period's rules with the offer, from memory: a period changed on another server
    (the booking window closed by an admin) is obeyed by the very next click, and the click writes nothing."""
    _, period, units = centre(db)
    zoe, day = child(db, "Zoé"), weekday_ahead(12)
    parent = Client(app.test_client())
    Auth(parent).login()
    token = csrf_from(parent.get(planning_url(zoe, period, day)).get_data(as_text=True))

    def click(unit):  # straight from the page already on the screen: no page load in between
        return page_text(parent.post(f"/reservations/planning/{zoe.id}/{period.id}/cellule", headers=HX, data={
            "csrf_token": token, "cellule": f"{day.isoformat()}.{unit.id}", "mois": f"{day:%Y-%m}"}))

    assert "sélectionné" in click(units["matinee"])  # the offer is in memory
    change_on_another_server(make_app, period, booking_closes_at=utcnow() - timedelta(hours=1))
    answer = click(units["repas"])
    assert "Période de réservation terminée" in answer
    db.expire_all()
    lines = db.exec(select(DraftLine.unit_id).join(Draft).where(Draft.child_id == zoe.id)).all()
    assert lines == [units["matinee"].id]


def test_a_period_moved_on_another_server_shows_its_new_days_at_once(make_app, app, db):
    """With the offer in memory, the planning page reads its month in the statement that reads the offer's
    version: when another server has just moved the period's first day into the month, the page still
    draws the days the period now has, with the selection the draft holds."""
    _, period, units = centre(db)
    zoe, day = child(db, "Zoé"), weekday_ahead(12)
    if day.day == 1:  # a month's first day would leave nothing of the month before it
        day = weekday_ahead(1, day)
    parent = Client(app.test_client())
    Auth(parent).login()
    post_cell(parent.raw, zoe, period, units["matinee"], day)
    before = page_text(parent.get(planning_url(zoe, period, day)))  # the offer is in memory
    assert min(days_drawn(before)) < day
    change_on_another_server(make_app, period, start_date=day)
    page = page_text(parent.get(planning_url(zoe, period, day)))
    assert min(days_drawn(page)) == day
    assert f'<td id="cell-{day.isoformat()}-matinee" class="cell cell--selected' in page
    assert "<strong>1</strong> case sélectionnée (à confirmer)" in page


def change_on_another_server(make_app, period, **columns) -> None:
    """Write ``columns`` of the period through another app server's session (its own engine)."""
    with make_app().app_context():
        other = get_db()
        moved = other.get(Period, period.id)
        for name, value in columns.items():
            setattr(moved, name, value)
        other.add(moved)
        other.commit()


def days_drawn(page: str) -> set[date]:
    return {date.fromisoformat(d) for d in re.findall(r'<td id="cell-(\d{4}-\d\d-\d\d)-', page)}


def test_another_familys_planning_is_refused_when_the_period_is_in_memory(app, db, auth):
    """The month's reads travel with the check of the child: what they read of another household's child
    is dropped, and the answer is a 404 that names nobody."""
    _, period, units = centre(db)
    zoe, rayan, day = child(db, "Zoé"), child(db, "Rayan"), weekday_ahead(12)
    auth.login()  # Zoé's parent
    assert auth.client.get(planning_url(zoe, period, day)).status_code == 200  # the offer is in memory
    answer = auth.client.get(planning_url(rayan, period, day))
    assert answer.status_code == 404
    assert "Rayan" not in answer.get_data(as_text=True)


def test_a_period_that_now_starts_earlier_shows_the_places_of_its_new_days(make_app, app, db):
    """The month's reads that travelled with the check cover the days of the period this process held:
    when another server has since moved the period's first day earlier, the page reads the month again,
    and a day now in the period shows its places (here: full), not a free cell for want of its row."""
    _, period, units = centre(db)
    full = weekday_ahead(12)
    while weekday_ahead(1, full).month != full.month:  # a weekday after it in its month
        full = weekday_ahead(1, full)
    later, first_day = weekday_ahead(1, full), period.start_date
    change_on_another_server(make_app, period, start_date=later)
    parent = Client(app.test_client())
    Auth(parent).login()
    url = planning_url(child(db, "Zoé"), period, later)
    assert min(days_drawn(page_text(parent.get(url)))) == later  # the offer is in memory, from `later` on
    db.add(DaySlot(unit_id=units["matinee"].id, day=full, taken=units["matinee"].capacity))
    db.commit()
    change_on_another_server(make_app, period, start_date=first_day)
    page = page_text(parent.get(url))
    assert f'<td id="cell-{full.isoformat()}-matinee" class="cell cell--full' in page
