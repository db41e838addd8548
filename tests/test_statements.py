"""What the hot routes of the registration morning send to the database, statement by statement.

The budget of each route is part of its design (issue 16): a click checks ownership and locks the
draft in one statement, reads its day in one, writes in one; on PostgreSQL the lock and the read travel
together, then the write and the COMMIT (``db.in_one_trip``). A change that adds a query fails here.
"""
import contextlib
import tempfile

import psycopg
import pytest
from sqlalchemy import bindparam, event, insert, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from db import get_db, in_one_trip, writing_session
from models import Counter, DraftLine, Family
from tests.conftest import page_text
from tests.factories import (
    billed_month,
    centre,
    child,
    csrf_from,
    family_change,
    planning_url,
    post_cell,
    reservation_with_a_request,
    weekday_ahead,
)


@contextlib.contextmanager
def statements_of(app):
    """The kind of each statement sent in the block (SELECT, UPDATE…), BEGIN left out."""
    sent = []

    def record(conn, cursor, statement, *args):
        if not statement.startswith("BEGIN"):
            sent.append(statement.split()[0])

    engine = app.extensions["ribambelle.engine"]
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


def second_click(db, auth):
    """Zoé's parent logged in, her draft made by a first click (the lunch): the units, the day, and the
    URL and form of a click on that day's morning."""
    _, period, units = centre(db)
    zoe, day = child(db, "Zoé"), weekday_ahead(12)
    auth.login()
    post_cell(auth.client.raw, zoe, period, units["repas"], day)  # the draft's first click creates it
    token = csrf_from(auth.client.get(planning_url(zoe, period, day)).get_data(as_text=True))
    form = {"csrf_token": token, "cellule": f"{day.isoformat()}.{units['matinee'].id}", "mois": f"{day:%Y-%m}"}
    return units, day, f"/reservations/planning/{zoe.id}/{period.id}/cellule", form


def test_a_click_locks_reads_and_writes_once_each(app, db, auth):
    units, day, url, form = second_click(db, auth)
    with statements_of(app) as selecting:
        selected = auth.client.post(url, data=form, headers={"HX-Request": "true"})
    with statements_of(app) as clearing:
        cleared = auth.client.post(url, data=form, headers={"HX-Request": "true"})
    assert "sélectionné, réservation acceptée" in selected.get_data(as_text=True)
    assert "sélection retirée" in cleared.get_data(as_text=True)
    # the login session, then the draft's lock (ownership checked), the day's read, the write
    assert selecting == ["SELECT", "UPDATE", "SELECT", "INSERT"]
    assert clearing == ["SELECT", "UPDATE", "SELECT", "DELETE"]
    lines = db.exec(select(DraftLine.unit_id).where(DraftLine.day == day)).all()
    assert lines == [units["repas"].id]


@contextlib.contextmanager
def protocol_of(app):
    """What the portal's connections said to PostgreSQL and heard back in the block (libpq's trace), as
    lines "F|B <message> ..." once the block is over."""
    engine = app.extensions["ribambelle.engine"]
    trace, traced, lines = tempfile.TemporaryFile(), [], []

    def checkout(dbapi_connection, record, proxy):
        dbapi_connection.pgconn.trace(trace.fileno())
        dbapi_connection.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
        traced.append(dbapi_connection)

    event.listen(engine, "checkout", checkout)
    try:
        yield lines
    finally:
        event.remove(engine, "checkout", checkout)
        for connection in traced:
            connection.pgconn.untrace()
        trace.seek(0)
        for line in trace.read().decode().splitlines():
            if line[:2] in ("F\t", "B\t"):  # else the rest of a statement written on several lines
                direction, _length, message, *arguments = line.split("\t")
                lines.append(" ".join([direction, message, *arguments]))


@pytest.mark.backends("postgresql")
def test_a_click_holds_its_draft_locked_for_two_round_trips_on_postgresql(app, db, auth):
    """The lock and the day's read travel together, then the write and the COMMIT: between the draft's
    UPDATE and the end of its transaction, the portal waits for PostgreSQL twice (as the stack's floor,
    whose click is one UPDATE and its COMMIT), not once per statement."""
    units, day, url, form = second_click(db, auth)
    with protocol_of(app) as protocol:
        response = auth.client.post(url, data=form, headers={"HX-Request": "true"})
    assert "sélectionné, réservation acceptée" in response.get_data(as_text=True)
    lock = next(i for i, line in enumerate(protocol) if line.startswith("F Parse") and "UPDATE draft" in line)
    end = next(i for i, line in enumerate(protocol) if i > lock and line.startswith("B CommandComplete") and "COMMIT" in line)
    end = next(i for i, line in enumerate(protocol) if i > end and line.startswith("B ReadyForQuery"))
    waits = [line for line in protocol[lock:end + 1] if line.startswith("B ReadyForQuery")]
    assert len(waits) == 2, protocol[lock:end + 1]
    assert db.exec(select(DraftLine.unit_id).where(DraftLine.day == day)).all() == [units["repas"].id, units["matinee"].id]


def test_a_click_on_another_familys_child_is_refused_by_the_lock_itself(app, db, auth):
    _, period, units = centre(db)
    rayan, day = child(db, "Rayan"), weekday_ahead(12)
    auth.login()  # Zoé's parent
    with statements_of(app) as sent:
        response = post_cell(auth.client.raw, rayan, period, units["matinee"], day)
    assert response.status_code == 404
    assert "INSERT" not in sent and "DELETE" not in sent
    assert db.exec(select(DraftLine).where(DraftLine.day == day)).all() == []


def morning_selected(db, auth) -> tuple:
    """Zoé's parent logged in, her morning 12 days ahead selected (the page seen once: the period's offer
    is in memory): the day, and the planning's URL."""
    _, period, units = centre(db)
    zoe, day = child(db, "Zoé"), weekday_ahead(12)
    auth.login()
    post_cell(auth.client.raw, zoe, period, units["matinee"], day)
    return day, planning_url(zoe, period, day)


def test_the_planning_page_reads_its_head_in_one_query_and_its_month_in_three(app, db, auth):
    day, url = morning_selected(db, auth)
    with statements_of(app) as sent:
        page = auth.client.get(url).get_data(as_text=True)
    assert "<strong>1</strong> case sélectionnée (à confirmer)" in page
    # the login session; the child, establishment, version, draft and count; lines, bookings, places
    assert sent == ["SELECT"] * 5


@pytest.mark.backends("postgresql")
def test_the_planning_page_reads_its_month_with_its_head_in_one_round_trip_on_postgresql(app, db, auth):
    """Once the period's offer is in the process's memory, the month's reads travel with the statement
    that checks the child: the page waits for PostgreSQL four times (the transaction's BEGIN, the login
    session, the page's four reads, its COMMIT), where the stack's bare page waits three times."""
    day, url = morning_selected(db, auth)
    with protocol_of(app) as protocol:
        page = auth.client.get(url).get_data(as_text=True)
    assert "<strong>1</strong> case sélectionnée (à confirmer)" in page
    assert f'<td id="cell-{day.isoformat()}-matinee" class="cell cell--selected' in page
    assert len([line for line in protocol if line.startswith("B ReadyForQuery")]) == 4, protocol


def test_the_recap_reads_its_head_in_one_query(app, db, auth):
    _, period, units = centre(db)
    zoe, day = child(db, "Zoé"), weekday_ahead(12)
    auth.login()
    post_cell(auth.client.raw, zoe, period, units["matinee"], day)
    with statements_of(app) as sent:
        page = auth.client.get(f"/reservations/planning/{zoe.id}/{period.id}/recapitulatif").get_data(as_text=True)
    assert "Confirmer la réservation" in page and "Matinée" in page
    # the login session; the child, period, establishment, version and draft; the selected lines; the
    # days' lines, bookings and places; the documents the centre asks (none here: no family's to read)
    assert sent == ["SELECT"] * 7


def test_the_family_space_reads_each_block_in_one_query(app, db, auth):
    reservation = reservation_with_a_request(db)  # two mornings accepted, a request and a full day waiting
    invoice = billed_month(db)  # last month's périscolaire, partly paid by cheque
    family_change(db, "Durand")
    auth.login()
    with statements_of(app) as sent:
        page = page_text(auth.client.get("/compte/"))
    # the login session; the family's file (guardians, children, pending changes, login change), its
    # reservations with their lines counted, its invoices with their payments and credits
    assert sent == ["SELECT"] * 4
    assert "Modification en attente de validation" in page and "Zoé Durand" in page
    assert f"<strong>Zoé</strong> — {reservation.number}" in page and "2 jours acceptés, 2 en attente" in page
    assert invoice.number in page and "Chèque" in page


def test_a_reading_request_never_commits_what_it_changed_without_committing(app, db):
    """A GET ends its transaction with a COMMIT only when it wrote nothing: a change it flushed and left
    uncommitted is rolled back, as before."""
    family = db.exec(select(Family)).first()
    name = family.name

    @app.get("/essai/ecrit-sans-valider")
    def writes_without_committing():
        reading = get_db()
        reading.get(Family, family.id).name = "Changé en lisant"
        reading.exec(select(Family)).all()  # the change is flushed, never committed
        return "lu"

    @app.get("/essai/lot-sans-valider")
    def sends_a_write_without_committing():
        in_one_trip(get_db(), [(ADD_COUNTER, {"name": "en-lisant", "value": 1})])  # a batch's write, uncommitted
        return "lu"

    assert app.test_client().get("/essai/ecrit-sans-valider").get_data(as_text=True) == "lu"
    assert app.test_client().get("/essai/lot-sans-valider").get_data(as_text=True) == "lu"
    db.expire_all()
    assert db.get(Family, family.id).name == name
    assert db.get(Counter, "en-lisant") is None


@pytest.mark.backends("postgresql")
def test_pages_keep_their_statements_prepared_on_postgresql(app, db, auth):
    """psycopg prepares a statement run five times on a connection and forgets all of them at a ROLLBACK:
    a page that ends its reading transaction with one would have PostgreSQL plan its statements again at
    every request. After a few visits of the family space, the connection holds them prepared."""
    auth.login()
    for _ in range(8):
        assert auth.client.get("/compte/").status_code == 200
    engine = app.extensions["ribambelle.engine"]
    pooled = [engine.connect() for _ in range(engine.pool.checkedin())]
    prepared = [c.execute(text("SELECT statement FROM pg_prepared_statements")).scalars().all() for c in pooled]
    for c in pooled:
        c.close()
    assert any(any("FROM invoice" in s for s in statements) for statements in prepared), prepared


ADD_COUNTER = insert(Counter.__table__).values(name=bindparam("name"), value=bindparam("value"))
READ_COUNTER = select(Counter.__table__.c.value).where(Counter.__table__.c.name == bindparam("name"))


def test_statements_sent_together_run_in_order_and_fail_together(app, db, backend):
    """``db.in_one_trip``: each statement sees the one before it, rows come back by column name; a batch
    whose second write breaks a constraint raises SQLAlchemy's IntegrityError (on PostgreSQL too, where
    psycopg sends it as one batch) and, rolled back, keeps nothing of the first."""
    with app.test_request_context("/", method="POST"):
        session = get_db()
        added, read = in_one_trip(session, [(ADD_COUNTER, {"name": "essai", "value": 41}), (READ_COUNTER, {"name": "essai"})],
                                  commit=True)
        assert added == [] and [row.value for row in read] == [41]
        with pytest.raises(IntegrityError):
            in_one_trip(session, [(ADD_COUNTER, {"name": "lot", "value": 1}), (ADD_COUNTER, {"name": "essai", "value": 2})],
                        commit=True)
        session.rollback()
    db.expire_all()
    mine = db.exec(select(Counter).where(Counter.name.in_(["essai", "lot"]))).all()
    assert {c.name: c.value for c in mine} == {"essai": 41}


def test_writing_sessions_share_one_engine_that_begins_immediate(app):
    """A POST's session is bound to the engine made once for writers (on SQLite it begins IMMEDIATE):
    making it at every request cost a tenth of a bare click."""
    engine = app.extensions["ribambelle.engine"]
    first, second = writing_session(engine), writing_session(engine)
    assert first.get_bind() is second.get_bind()
    assert first.get_bind().get_execution_options()["sqlite_immediate"] is True
    assert "sqlite_immediate" not in engine.get_execution_options()
