"""Faults lose nothing and get words: the error page without the database, readiness, htmx errors."""
import re
import threading
import time

import psycopg
import pytest
from playwright.sync_api import expect
from sqlalchemy import create_engine, event
from sqlmodel import select

from db import get_db
from models import Draft, DraftLine
from tests.conftest import Auth, Client, check_invariants, page_text, place_drift
from tests.factories import (
    bookable_day,
    centre,
    child,
    csrf_from,
    login,
    make_town,
    open_planning_from_the_window,
    planning_url,
)

UNREACHABLE = "postgresql+psycopg://nobody@127.0.0.1:1/none"


def _database_goes_away(app):
    """As if PostgreSQL stopped: every connection the app asks for now fails."""
    app.extensions["ribambelle.engine"].dispose()
    app.extensions["ribambelle.engine"] = create_engine(UNREACHABLE, connect_args={"connect_timeout": 1})


def test_the_error_page_needs_no_database(make_app):
    """A logged-in parent while the database is down: a French page with the site around it, no traceback."""
    app = make_app(PROPAGATE_EXCEPTIONS=False)
    with app.app_context():
        make_town(get_db(), app.extensions["ribambelle.hasher"])
    client = Client(app.test_client())
    Auth(client).login()
    _database_goes_away(app)
    for url in ("/", "/compte/famille/modifier", "/factures/1"):
        response = client.get(url)
        text = page_text(response)
        assert response.status_code == 500, url
        assert "Erreur du serveur" in text and "vos réservations confirmées et vos paiements validés restent" in text
        assert "Portail famille" in text and "Aller au contenu" in text  # the page itself, not a bare fallback
        assert "Rien n'a été enregistré" not in text and "Traceback" not in text and "psycopg" not in text
    app.extensions["ribambelle.engine"].dispose()


def test_readyz_checks_the_database_and_healthz_does_not(make_app):
    app = make_app()
    assert app.test_client().get("/readyz").get_json() == {"status": "ok"}
    _database_goes_away(app)
    down = app.test_client().get("/readyz")
    assert down.status_code == 503 and down.get_json() == {"status": "database unavailable"}
    assert app.test_client().get("/healthz").status_code == 200
    app.extensions["ribambelle.engine"].dispose()


def test_a_failed_htmx_click_is_announced_in_the_planning(page, db):
    """A toggle answered 500, or lost on the network: the planning's live region says so."""
    login(page)
    open_planning_from_the_window(page)
    cell = page.locator("td.cell--available").filter(has=page.locator("button")).first
    page.route(re.compile(r".*/cellule$"), lambda route: route.fulfill(status=500, body="erreur"))
    cell.get_by_role("button").click()
    expect(page.locator("#planning-live")).to_contain_text("Le serveur n'a pas pu enregistrer ce choix.")
    page.unroute(re.compile(r".*/cellule$"))
    page.route(re.compile(r".*/cellule$"), lambda route: route.abort())
    cell.get_by_role("button").click()
    expect(page.locator("#planning-live")).to_contain_text("Pas de connexion au serveur")


def test_two_guardians_clicking_one_cell_at_the_same_moment(app, db):
    """Both answered 200 with the cell as it now is; the draft ends consistent (two clicks: as before)."""
    est, period, units = centre(db)
    zoe = child(db, "Zoé")
    unit = units["matinee"]
    day = bookable_day(db, period, unit, zoe)
    guardians = []
    for email in ("zoe.parent@tilleuls.test", "zoe.parent2@tilleuls.test"):
        client = Client(app.test_client())
        Auth(client).login(email)
        guardians.append(client)
    url = f"/reservations/planning/{zoe.id}/{period.id}/cellule"
    drift = place_drift(db)
    for round_ in range(6):
        tokens = [re.search(r'name="csrf_token" value="([^"]+)"|"X-CSRFToken": "([^"]+)"',
                            c.get(planning_url(zoe, period, day)).get_data(as_text=True)) for c in guardians]
        tokens = [m.group(1) or m.group(2) for m in tokens]
        barrier, answers = threading.Barrier(2), []

        def click(client, token, barrier=barrier, answers=answers):
            barrier.wait()
            response = client.post(url, data={"csrf_token": token, "cellule": f"{day.isoformat()}.{unit.id}",
                                              "mois": f"{day:%Y-%m}"}, headers={"HX-Request": "true"})
            answers.append((response.status_code, response.get_data(as_text=True)))

        threads = [threading.Thread(target=click, args=(c, t)) for c, t in zip(guardians, tokens)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [code for code, _ in answers] == [200, 200], (round_, [a[1][:300] for a in answers])
        assert all(f'id="cell-{day.isoformat()}-matinee"' in body for _, body in answers)
        db.expire_all()
        draft = db.exec(select(Draft).where(Draft.child_id == zoe.id, Draft.period_id == period.id)).one()
        lines = db.exec(select(DraftLine).where(DraftLine.draft_id == draft.id, DraftLine.unit_id == unit.id,
                                                DraftLine.day == day)).all()
        assert lines == [], round_  # one click selected it, the other cleared it: as before the round
        check_invariants(db, drift)


def _logged_in_beside_zoes_lunch(make_app):
    """An app whose errors become pages (as in production), its parent logged in, and Zoé's lunch on a
    day she can book: (app, client, (zoe, period, lunch, day))."""
    app = make_app(PROPAGATE_EXCEPTIONS=False)
    with app.app_context():
        db = get_db()
        make_town(db, app.extensions["ribambelle.hasher"])
        _, period, units = centre(db)
        zoe = child(db, "Zoé")
        day = bookable_day(db, period, units["repas"], zoe)
    client = Client(app.test_client())
    Auth(client).login()
    return app, client, (zoe, period, units["repas"], day)


@pytest.mark.backends("postgresql")
def test_pooled_connections_the_server_ended_are_replaced_before_a_parent_meets_them(make_app):
    """PostgreSQL restarted or an admin ended the portal's idle connections: the next pages and clicks
    work at once, on fresh connections, with no error page in between."""
    app, client, (zoe, period, lunch, day) = _logged_in_beside_zoes_lunch(make_app)
    cell = f"{day.isoformat()}.{lunch.id}"
    page = client.get(planning_url(zoe, period, day)).get_data(as_text=True)
    engine = app.extensions["ribambelle.engine"]
    database = engine.url.database
    with psycopg.connect(engine.url.set(drivername="postgresql").render_as_string(hide_password=False),
                         autocommit=True) as admin:
        ended = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                              "AND application_name = 'ribambelle' AND pid <> pg_backend_pid()", [database]).fetchall()
        assert ended and all(row[0] for row in ended)
        for _ in range(50):  # the backends are gone once they no longer show
            if not admin.execute("SELECT 1 FROM pg_stat_activity WHERE datname = %s AND application_name = "
                                 "'ribambelle' AND pid <> pg_backend_pid()", [database]).fetchall():
                break
            time.sleep(0.05)
    again = client.get(planning_url(zoe, period, day))
    assert again.status_code == 200 and "Planning" in page_text(again)
    click = client.post(f"/reservations/planning/{zoe.id}/{period.id}/cellule", headers={"HX-Request": "true"},
                        data={"csrf_token": csrf_from(page), "cellule": cell, "mois": f"{day:%Y-%m}"})
    assert click.status_code == 200 and "sélectionné" in page_text(click)


def _terminate_at(engine, first_statement):
    """A ``before_cursor_execute`` listener that has PostgreSQL end the portal's connection just before the
    first statement ``first_statement`` accepts is sent, and the list of the backends it ended."""
    killed = []

    def listener(conn, cursor, statement, *args):
        if first_statement(statement) and not killed:
            pid = conn.connection.dbapi_connection.info.backend_pid
            with psycopg.connect(engine.url.set(drivername="postgresql").render_as_string(hide_password=False),
                                 autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", [pid])
            killed.append(pid)

    return killed, listener


@pytest.mark.backends("postgresql")
def test_a_click_whose_connection_dies_in_flight_writes_nothing_and_the_next_click_works(make_app):
    """PostgreSQL ends the portal's connection while a click's write and COMMIT are on their way (one
    batch, ``db.in_one_trip``): the parent gets the error page, nothing is half written, the broken
    connection is thrown away, and the same click a moment later selects the cell."""
    app, client, (zoe, period, lunch, day) = _logged_in_beside_zoes_lunch(make_app)
    ids = (zoe.id, period.id, lunch.id)
    engine = app.extensions["ribambelle.engine"]
    killed, kill_before_the_write = _terminate_at(engine, lambda statement: statement.startswith("INSERT INTO draftline"))
    event.listen(engine, "before_cursor_execute", kill_before_the_write)
    url = f"/reservations/planning/{ids[0]}/{ids[1]}/cellule"
    page = client.get(planning_url(zoe, period, day)).get_data(as_text=True)
    form = {"csrf_token": csrf_from(page), "cellule": f"{day.isoformat()}.{ids[2]}", "mois": f"{day:%Y-%m}"}
    lost = client.post(url, data=form, headers={"HX-Request": "true"})
    assert killed and lost.status_code == 500
    assert "Erreur du serveur" in page_text(lost)
    with app.app_context():
        assert get_db().exec(select(DraftLine).where(DraftLine.day == day)).all() == []
    again = client.post(url, data=form, headers={"HX-Request": "true"})
    assert again.status_code == 200 and "sélectionné" in page_text(again)
    with app.app_context():
        assert [line.unit_id for line in get_db().exec(select(DraftLine).where(DraftLine.day == day))] == [ids[2]]
    event.remove(engine, "before_cursor_execute", kill_before_the_write)


@pytest.mark.backends("postgresql")
def test_a_page_whose_connection_dies_at_the_session_read_shows_the_error_page_then_the_next_one_works(make_app):
    """PostgreSQL ends the portal's connection as a request reads who is logged in (the read sent
    straight through the driver, ``db.first_row``): the parent gets the error page, which needs no
    database, and the same page a moment later answers on a fresh connection."""
    app, client, (zoe, period, _, day) = _logged_in_beside_zoes_lunch(make_app)
    engine = app.extensions["ribambelle.engine"]
    killed, kill_at_the_session_read = _terminate_at(engine, lambda statement: "JOIN loginsession" in statement)
    event.listen(engine, "before_cursor_execute", kill_at_the_session_read)
    lost = client.get(planning_url(zoe, period, day))
    event.remove(engine, "before_cursor_execute", kill_at_the_session_read)
    assert killed and lost.status_code == 500 and "Erreur du serveur" in page_text(lost)
    again = client.get(planning_url(zoe, period, day))
    assert again.status_code == 200 and "Planning de Zoé" in page_text(again)
