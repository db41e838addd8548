"""Cancellations without HTTP (guide section 9): deadlines, freed places, the waiting list, late
cancellations billed unless justified, absences, and a cancellation racing a booking."""
import threading
from datetime import date

import pytest
from sqlmodel import Session, select

from db import writing_session
from models import Booking, Child, DaySlot, Draft, DraftLine, OutboxMail, Period, Reservation, User
from services import planning
from tests.factories import NOW, book, cancel, child, confirm, enroll_everyone, lines_of, parent_id, paris, units


def test_cancellation_deadlines_at_each_boundary(summer):
    # From Monday 28 June: 8 days ahead is accepted, 7 a request, 2 a request, 1 locked
    assert planning.cancel_rule(summer, "accepted", date(2027, 7, 6), NOW)[0] == "accepted"
    assert planning.cancel_rule(summer, "accepted", date(2027, 7, 5), NOW)[0] == "request"
    assert planning.cancel_rule(summer, "accepted", date(2027, 6, 30), NOW)[0] == "request"
    locked, why = planning.cancel_rule(summer, "accepted", date(2027, 6, 29), NOW)
    assert locked is None and "contactez la structure" in why
    # a request or a waiting-list place not granted yet is withdrawn at once, even late
    assert planning.cancel_rule(summer, "request", date(2027, 6, 29), NOW)[0] == "accepted"
    assert planning.cancel_rule(summer, "waitlist", date(2027, 6, 29), NOW)[0] == "accepted"


def test_accepted_cancellation_frees_the_place(app, db, summer):
    day = date(2027, 7, 20)
    book(app, db, summer, "Zoé", "matinee", day)
    assert db.get(DaySlot, (units(db)["matinee"].id, day)).taken == 1
    record = cancel(app, db, summer, "Zoé", "matinee", day)
    assert record.kind == "cancellation" and record.status == "accepted" and record.number.startswith("R-")
    db.expire_all()
    assert db.get(DaySlot, (units(db)["matinee"].id, day)).taken == 0
    assert db.exec(select(Booking).where(Booking.child_id == child(db).id, Booking.day == day)).first() is None
    assert lines_of(db, record)[0].outcome == "cancel-accepted" and not lines_of(db, record)[0].billable


def test_late_cancellation_is_a_request_billed_unless_justified(app, db, summer):
    day = date(2027, 7, 20)
    book(app, db, summer, "Zoé", "matinee", day)
    book(app, db, summer, "Zoé", "repas", day)
    late = paris(2027, 7, 15)  # 5 days before
    record = cancel(app, db, summer, "Zoé", "matinee", day, now=late)
    line = lines_of(db, record)[0]
    assert line.outcome == "cancel-request" and line.state == "pending" and record.status == "pending"
    c = planning.load_planning(db, child(db), summer, [day], late).cell(units(db)["matinee"], day)
    assert c.state == "cancel_request"
    agent = db.exec(select(User).where(User.role == "agent")).one()
    engine = app.extensions["ribambelle.engine"]
    with writing_session(engine) as w:
        planning.decide_line(w, agent.id, line.id, True, "", late)
    line = lines_of(db, record)[0]
    assert line.state == "accepted" and line.billable and not line.justified
    assert db.get(DaySlot, (units(db)["matinee"].id, day)).taken == 0

    record = cancel(app, db, summer, "Zoé", "repas", day, now=late)
    with writing_session(engine) as w:
        planning.decide_line(w, agent.id, lines_of(db, record)[0].id, True, "", late,
                             justified=True, justification="Certificat médical")
    line = lines_of(db, record)[0]
    assert not line.billable and line.justified and line.justification == "Certificat médical"


def test_refused_cancellation_keeps_the_booking(app, db, summer):
    day = date(2027, 7, 20)
    book(app, db, summer, "Zoé", "matinee", day)
    late = paris(2027, 7, 15)
    record = cancel(app, db, summer, "Zoé", "matinee", day, now=late)
    agent = db.exec(select(User).where(User.role == "agent")).one()
    with writing_session(app.extensions["ribambelle.engine"]) as w:
        planning.decide_line(w, agent.id, lines_of(db, record)[0].id, False, "Trop tard", late)
    db.expire_all()
    booking = db.exec(select(Booking).where(Booking.child_id == child(db).id, Booking.day == day)).one()
    assert booking.status == "accepted" and booking.cancel_line_id is None


def test_cancellation_never_touches_a_day_that_is_not_booked(app, db, summer):
    day = date(2027, 7, 21)
    with pytest.raises(planning.PlanningError):  # the click itself is refused
        planning.toggle(db, child(db), summer, units(db)["matinee"].id, day, NOW, mode="cancel")
    # a forged draft line gets a refused line, and nothing else changes
    planning.toggle(db, child(db), summer, units(db)["repas"].id, date(2027, 7, 20), NOW)
    draft = db.exec(select(Draft).where(Draft.child_id == child(db).id, Draft.period_id == summer.id)).one()
    db.add(DraftLine(draft_id=draft.id, unit_id=units(db)["matinee"].id, day=day, action="cancel", expected="accepted"))
    db.commit()
    with writing_session(app.extensions["ribambelle.engine"]) as w:
        record = planning.confirm_cancellation(w, parent_id(db), w.get(Child, child(db).id), w.get(Period, summer.id),
                                               db.get(Draft, draft.id).revision, NOW)
    line = lines_of(db, record)[0]
    assert line.state == "refused" and line.note == "Ce jour n'était pas réservé"
    assert db.exec(select(Booking).where(Booking.day == day)).all() == []


def test_replayed_cancellation_records_once(app, db, summer):
    day = date(2027, 7, 20)
    book(app, db, summer, "Zoé", "matinee", day)
    planning.toggle(db, child(db), summer, units(db)["matinee"].id, day, NOW, mode="cancel")
    revision = planning.recap(db, child(db), summer, NOW, mode="cancel")[0].revision
    results = []
    for _ in range(2):
        with writing_session(app.extensions["ribambelle.engine"]) as w:
            results.append(planning.confirm_cancellation(w, parent_id(db), w.get(Child, child(db).id),
                                                         w.get(Period, summer.id), revision, NOW).id)
    assert results[0] == results[1]
    assert len(db.exec(select(Reservation).where(Reservation.kind == "cancellation")).all()) == 1
    assert db.get(DaySlot, (units(db)["matinee"].id, day)).taken == 0  # freed once, not twice


def test_freed_place_goes_to_the_waiting_list_automatically_when_the_period_says_so(app, db, summer):
    enroll_everyone(db, summer)
    summer.waitlist_auto = True
    db.add(summer)
    u = units(db)["journee"]
    day = date(2027, 7, 20)
    db.add(DaySlot(unit_id=u.id, day=day, taken=u.capacity - 1))
    db.commit()
    book(app, db, summer, "Zoé", "journee", day)  # the last place
    waiting = book(app, db, summer, "Rayan", "journee", day)
    assert lines_of(db, waiting)[0].outcome == "waitlist"
    with app.app_context():
        cancel(app, db, summer, "Zoé", "journee", day)
    db.expire_all()
    rayan = db.exec(select(Booking).where(Booking.child_id == child(db, "Rayan").id, Booking.day == day)).one()
    assert rayan.status == "accepted"
    assert db.get(Reservation, waiting.id).status == "accepted"
    assert db.get(DaySlot, (u.id, day)).taken == u.capacity
    mail = db.exec(select(OutboxMail).where(OutboxMail.recipient == "rayan.parent@tilleuls.test")).one()
    assert "Une place s'est libérée pour Rayan" == mail.subject


def test_without_automatic_promotion_the_waiting_line_waits_for_an_agent(app, db, summer):
    enroll_everyone(db, summer)
    u = units(db)["journee"]
    day = date(2027, 7, 20)
    db.add(DaySlot(unit_id=u.id, day=day, taken=u.capacity - 1))
    db.commit()
    book(app, db, summer, "Zoé", "journee", day)
    waiting = book(app, db, summer, "Rayan", "journee", day)
    cancel(app, db, summer, "Zoé", "journee", day)
    db.expire_all()
    assert db.get(DaySlot, (u.id, day)).taken == u.capacity - 1  # a place is free ...
    line = lines_of(db, waiting)[0]
    assert line.state == "pending"  # ... and the first waiting line is offered to an agent
    agent = db.exec(select(User).where(User.role == "agent")).one()
    with writing_session(app.extensions["ribambelle.engine"]) as w:
        planning.decide_line(w, agent.id, line.id, True, "", NOW)
    db.expire_all()
    assert db.get(DaySlot, (u.id, day)).taken == u.capacity


def test_a_cancellation_and_a_booking_racing_for_the_last_place(app, db, summer):
    enroll_everyone(db, summer)
    u = units(db)["journee"]
    day = date(2027, 7, 20)
    db.add(DaySlot(unit_id=u.id, day=day, taken=u.capacity - 1))
    db.commit()
    book(app, db, summer, "Zoé", "journee", day)  # full now
    planning.toggle(db, child(db, "Rayan"), summer, u.id, day, NOW)
    planning.toggle(db, child(db, "Zoé"), summer, u.id, day, NOW, mode="cancel")
    errors, barrier = [], threading.Barrier(2)

    def run(fn):
        try:
            barrier.wait()
            fn()
        except Exception as exc:
            errors.append(exc)

    def lea_cancels():
        with Session(app.extensions["ribambelle.engine"]) as s:
            rev = planning.recap(s, s.get(Child, child(db).id), s.get(Period, summer.id), NOW, mode="cancel")[0].revision
        with writing_session(app.extensions["ribambelle.engine"]) as w:
            planning.confirm_cancellation(w, parent_id(db), w.get(Child, child(db).id), w.get(Period, summer.id), rev, NOW)

    threads = [threading.Thread(target=run, args=(f,)) for f in (lea_cancels, lambda: confirm(app, "Rayan", summer))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    db.expire_all()
    holders = db.exec(select(Booking).where(Booking.unit_id == u.id, Booking.day == day, Booking.status.in_(("accepted", "request")))).all()
    slot = db.get(DaySlot, (u.id, day))
    assert slot.taken <= u.capacity
    assert slot.taken == len(holders) + (u.capacity - 1)  # the places counted are the places held
    assert planning.overbooked(db) == []
    rayan = db.exec(select(Booking).where(Booking.child_id == child(db, "Rayan").id, Booking.day == day)).one()
    assert rayan.status in ("accepted", "waitlist")  # accepted if the cancellation came first


def test_absence_today_is_a_request_the_agent_sees_first(app, db, summer):
    day = date(2027, 7, 20)
    book(app, db, summer, "Zoé", "matinee", day)
    book(app, db, summer, "Zoé", "repas", day)
    morning = paris(2027, 7, 20, 7, 30)
    with writing_session(app.extensions["ribambelle.engine"]) as w:
        records = planning.declare_absence(w, parent_id(db), w.get(Child, child(db).id), day, morning)
    assert len(records) == 1 and records[0].absence
    lines = lines_of(db, records[0])
    assert [l.outcome for l in lines] == ["cancel-request", "cancel-request"]
    queue = planning.pending_lines(db)
    assert queue[0][1].id == records[0].id  # absences first
    with writing_session(app.extensions["ribambelle.engine"]) as w, pytest.raises(planning.PlanningError, match="déjà signalée"):
        planning.declare_absence(w, parent_id(db), w.get(Child, child(db).id), day, morning)
    with writing_session(app.extensions["ribambelle.engine"]) as w, pytest.raises(planning.PlanningError, match="aujourd'hui ou demain"):
        planning.declare_absence(w, parent_id(db), w.get(Child, child(db).id), date(2027, 7, 23), morning)
