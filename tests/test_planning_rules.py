"""The planning's rules without HTTP: deadlines at each boundary, closures, capacity, exclusions,
confirmation and the race for the last place (on SQLite and PostgreSQL)."""
import threading
from datetime import date, time

import pytest
from sqlmodel import select

from db import writing_session
from models import Booking, DaySlot, Reservation, ReservationLine, User
from services import planning
from services.planning import state_summary
from tests.factories import NOW, at_once, child, confirm, enroll_everyone, paris, units


def cell(db, period, code, day, now=NOW, name="Zoé"):
    db.expire_all()
    c = child(db, name)
    p = planning.load_planning(db, c, period, [day], now)
    return p.cell(units(db)[code], day)


# --- deadlines --------------------------------------------------------------------------------------


def test_eight_days_ahead_is_accepted_seven_is_a_request(db, summer):
    # counting starts today (Monday 28 June, before the 23:59 cut-off)
    assert cell(db, summer, "matinee", date(2027, 7, 6)).state == "available"  # 8 days
    assert planning.booking_rule(summer, date(2027, 7, 6), NOW)[0] == "accepted"
    assert planning.booking_rule(summer, date(2027, 7, 5), NOW)[0] == "request"  # 7 days


def test_two_days_ahead_is_a_request_one_is_locked(db, summer):
    now = paris(2027, 7, 5)  # Monday
    assert planning.booking_rule(summer, date(2027, 7, 7), now)[0] == "request"  # 2 days
    locked = cell(db, summer, "matinee", date(2027, 7, 6), now)  # 1 day
    assert locked.state == "locked" and "Délai dépassé" in locked.reason and not locked.clickable


def test_past_day_is_locked(db, summer):
    c = cell(db, summer, "matinee", date(2027, 7, 5), paris(2027, 7, 9))
    assert c.state == "locked" and c.reason == "Date passée"


def test_cutoff_time_moves_the_counting_to_tomorrow(db, summer):
    summer.cutoff_time = time(12, 0)
    # 6 July is 8 days from Monday 28 June: accepted before noon, a request after it
    assert planning.booking_rule(summer, date(2027, 7, 6), paris(2027, 6, 28, 11, 59))[0] == "accepted"
    assert planning.booking_rule(summer, date(2027, 7, 6), paris(2027, 6, 28, 12, 1))[0] == "request"


def test_working_days_skip_weekends_and_public_holidays(db, summer):
    summer.working_days = True
    # From Monday 28 June, 8 working days reach Thursday 8 July (the weekend does not count)
    assert planning.days_ahead(summer, date(2027, 7, 8), NOW) == 8
    assert planning.booking_rule(summer, date(2027, 7, 8), NOW)[0] == "accepted"
    assert planning.booking_rule(summer, date(2027, 7, 7), NOW)[0] == "request"
    # 14 July (Wednesday, Fête nationale) is not a working day
    assert planning.days_ahead(summer, date(2027, 7, 15), paris(2027, 7, 12)) == 2


def test_booking_window_closed_before_opening_and_after_closing(db, summer):
    before = cell(db, summer, "matinee", date(2027, 7, 20), paris(2027, 5, 31, 12))
    assert before.state == "locked" and "ouvertes à partir du 01/06/2027 à 08:00" in before.reason
    after = cell(db, summer, "matinee", date(2027, 8, 26), paris(2027, 8, 20, 18, 1))
    assert after.state == "locked" and "terminée" in after.reason


# --- closures -----------------------------------------------------------------------------------------


def test_public_holiday_is_closed_with_its_name(db, summer):
    c = cell(db, summer, "matinee", date(2027, 7, 14))
    assert c.state == "closed" and c.reason == "Jour férié : Fête nationale"


def test_town_closed_day_and_weekday_not_offered(db, summer):
    assert cell(db, summer, "matinee", date(2027, 7, 16)).reason == "Sortie du personnel : fermé"
    wednesday_meal = cell(db, summer, "repas", date(2027, 7, 21))
    assert wednesday_meal.state == "closed" and "mercredi" in wednesday_meal.reason
    assert cell(db, summer, "matinee", date(2027, 7, 10)).state == "closed"  # Saturday


def test_closed_cell_cannot_be_toggled(db, summer):
    with pytest.raises(planning.PlanningError, match="Jour férié"):
        planning.toggle(db, child(db), summer, units(db)["matinee"].id, date(2027, 7, 14), NOW)


# --- selection ---------------------------------------------------------------------------------------


def test_click_selects_then_clears(db, summer):
    u = units(db)["matinee"]
    planning.toggle(db, child(db), summer, u.id, date(2027, 7, 20), NOW)
    c = cell(db, summer, "matinee", date(2027, 7, 20))
    assert c.state == "selected" and c.outcome == "accepted"
    planning.toggle(db, child(db), summer, u.id, date(2027, 7, 20), NOW)
    assert cell(db, summer, "matinee", date(2027, 7, 20)).state == "available"


def test_full_unit_offers_the_waiting_list(db, summer):
    u = units(db)["matinee"]
    db.add(DaySlot(unit_id=u.id, day=date(2027, 7, 20), taken=u.capacity))
    db.commit()
    assert cell(db, summer, "matinee", date(2027, 7, 20)).state == "full"
    planning.toggle(db, child(db), summer, u.id, date(2027, 7, 20), NOW)
    c = cell(db, summer, "matinee", date(2027, 7, 20))
    assert c.state == "selected" and c.outcome == "waitlist"


def test_journee_replaces_matinee_and_apres_midi_on_that_day(db, summer):
    u = units(db)
    day = date(2027, 7, 20)
    planning.toggle(db, child(db), summer, u["matinee"].id, day, NOW)
    planning.toggle(db, child(db), summer, u["apres-midi"].id, day, NOW)
    change = planning.toggle(db, child(db), summer, u["journee"].id, day, NOW)
    assert change.units == {u["journee"].id, u["matinee"].id, u["apres-midi"].id}
    assert "non cumulable" in change.message
    assert cell(db, summer, "journee", day).state == "selected"
    assert cell(db, summer, "matinee", day).state == "available"
    assert cell(db, summer, "apres-midi", day).state == "available"


def test_bulk_selects_only_bookable_days(db, summer):
    u = units(db)["matinee"]
    days = planning.month_days(summer, date(2027, 7, 1))
    change = planning.bulk(db, child(db), summer, u.id, days, True, NOW)
    # July 5-31: 20 weekdays, less 14 July (holiday) and 16 July (closed); the 5th is a request
    assert change.selected == 18
    p = planning.load_planning(db, child(db), summer, days, NOW)
    assert p.selected_count() == 18
    assert p.cell(u, date(2027, 7, 5)).outcome == "request"
    planning.bulk(db, child(db), summer, u.id, days, False, NOW)
    assert planning.load_planning(db, child(db), summer, days, NOW).selected_count() == 0


def test_auto_selection_keeps_the_ticked_weekdays(summer):
    days = planning.all_period_days(summer)
    chosen = planning.auto_days(summer, {0, 2}, days)
    assert chosen[0] == date(2027, 7, 5) and chosen[1] == date(2027, 7, 7)
    assert {d.weekday() for d in chosen} == {0, 2}


def test_confirmation_records_a_numbered_reservation_and_empties_the_draft(app, db, summer):
    u = units(db)
    for day in (date(2027, 7, 5), date(2027, 7, 6)):
        planning.toggle(db, child(db), summer, u["matinee"].id, day, NOW)
    reservation = confirm(app, "Zoé", summer)
    assert reservation.number.startswith("R-2027-")
    db.expire_all()
    lines = {l.day: l for l in db.get(Reservation, reservation.id).lines}
    assert lines[date(2027, 7, 5)].outcome == "request" and lines[date(2027, 7, 5)].state == "pending"
    assert lines[date(2027, 7, 6)].outcome == "accepted" and lines[date(2027, 7, 6)].state == "accepted"
    assert db.get(Reservation, reservation.id).status == "pending"
    assert cell(db, summer, "matinee", date(2027, 7, 6)).state == "booked"
    assert cell(db, summer, "matinee", date(2027, 7, 5)).state == "request"
    assert planning.recap(db, child(db), summer, NOW)[1] == []
    # numbers follow each other
    planning.toggle(db, child(db), summer, u["matinee"].id, date(2027, 7, 7), NOW)
    second = confirm(app, "Zoé", summer)
    assert int(second.number[-6:]) == int(reservation.number[-6:]) + 1


def test_replayed_confirmation_records_one_reservation(app, db, summer):
    planning.toggle(db, child(db), summer, units(db)["matinee"].id, date(2027, 7, 20), NOW)
    revision = planning.recap(db, child(db), summer, NOW)[0].revision
    first = confirm(app, "Zoé", summer, revision=revision)
    again = confirm(app, "Zoé", summer, revision=revision)
    assert again.id == first.id
    assert len(db.exec(select(Booking).where(Booking.child_id == child(db).id, Booking.day == date(2027, 7, 20))).all()) == 1


def test_outcome_changed_since_the_planning_is_explained(app, db, summer):
    u = units(db)["matinee"]
    planning.toggle(db, child(db), summer, u.id, date(2027, 7, 20), NOW)
    db.add(DaySlot(unit_id=u.id, day=date(2027, 7, 20), taken=u.capacity))  # others took every place
    db.commit()
    _, lines = planning.recap(db, child(db), summer, NOW)
    assert lines[0].changed and "Complet depuis votre sélection" in lines[0].note
    reservation = confirm(app, "Zoé", summer)
    db.expire_all()
    line = db.get(Reservation, reservation.id).lines[0]
    assert line.outcome == "waitlist" and "Complet depuis votre sélection" in line.note


def test_a_booked_day_cannot_be_booked_twice(db, summer, app):
    u = units(db)["matinee"]
    planning.toggle(db, child(db), summer, u.id, date(2027, 7, 20), NOW)
    confirm(app, "Zoé", summer)
    c = cell(db, summer, "matinee", date(2027, 7, 20))
    assert c.state == "booked" and not c.clickable
    with pytest.raises(planning.PlanningError):
        planning.toggle(db, child(db), summer, u.id, date(2027, 7, 20), NOW)


def confirm_at_once(app, names, period):
    """Each named child's parent confirms at the same instant, in threads; every failure shows."""
    return at_once({name: (lambda name=name: confirm(app, name, period)) for name in names})


def test_two_parents_confirming_the_last_place_at_once(app, db, summer):
    """One acceptance, one waiting list, never more bookings than places."""
    enroll_everyone(db, summer)
    u = units(db)["journee"]
    day = date(2027, 7, 20)
    db.add(DaySlot(unit_id=u.id, day=day, taken=u.capacity - 1))  # one place left
    db.commit()
    for name in ("Zoé", "Rayan"):
        planning.toggle(db, child(db, name), summer, u.id, day, NOW)
    results = confirm_at_once(app, ("Zoé", "Rayan"), summer)
    db.expire_all()
    outcomes = sorted(db.get(Reservation, r.id).lines[0].outcome for r in results.values())
    assert outcomes == ["accepted", "waitlist"]
    assert db.get(DaySlot, (u.id, day)).taken == u.capacity
    assert planning.overbooked(db) == []


def test_double_click_on_confirm_from_two_connections_records_one(app, db, summer):
    planning.toggle(db, child(db), summer, units(db)["matinee"].id, date(2027, 7, 20), NOW)
    revision = planning.recap(db, child(db), summer, NOW)[0].revision
    results, barrier = [], threading.Barrier(2)

    def go():
        barrier.wait()
        results.append(confirm(app, "Zoé", summer, revision=revision).id)

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2 and results[0] == results[1]
    assert len(db.exec(select(Reservation).where(Reservation.period_id == summer.id)).all()) == 1


# --- agents ------------------------------------------------------------------------------------------


def test_agent_accepts_a_request_and_refuses_another_freeing_its_place(app, db, summer):
    u = units(db)["matinee"]
    planning.toggle(db, child(db), summer, u.id, date(2027, 7, 5), paris(2027, 6, 30))
    planning.toggle(db, child(db), summer, u.id, date(2027, 7, 6), paris(2027, 6, 30))
    reservation = confirm(app, "Zoé", summer, now=paris(2027, 6, 30))
    db.expire_all()
    lines = db.get(Reservation, reservation.id).lines
    assert [l.outcome for l in lines] == ["request", "request"]
    agent = db.exec(select(User).where(User.role == "agent")).one()
    engine = app.extensions["ribambelle.engine"]
    with writing_session(engine) as w:
        planning.decide_line(w, agent.id, lines[0].id, True, "", NOW)
    with writing_session(engine) as w:
        planning.decide_line(w, agent.id, lines[1].id, False, "Complet ce jour-là", NOW)
    db.expire_all()
    assert db.get(Reservation, reservation.id).status == "partial"
    assert db.get(DaySlot, (u.id, date(2027, 7, 6))).taken == 0
    assert db.get(DaySlot, (u.id, date(2027, 7, 5))).taken == 1
    with writing_session(engine) as w, pytest.raises(planning.PlanningError, match="déjà été traitée"):
        planning.decide_line(w, agent.id, lines[1].id, True, "", NOW)


def test_waiting_list_line_cannot_be_accepted_while_full(app, db, summer):
    u = units(db)["matinee"]
    day = date(2027, 7, 20)
    db.add(DaySlot(unit_id=u.id, day=day, taken=u.capacity))
    db.commit()
    planning.toggle(db, child(db), summer, u.id, day, NOW)
    reservation = confirm(app, "Zoé", summer)
    db.expire_all()
    line = db.get(Reservation, reservation.id).lines[0]
    agent = db.exec(select(User).where(User.role == "agent")).one()
    with writing_session(app.extensions["ribambelle.engine"]) as w, pytest.raises(planning.PlanningError, match="complet"):
        planning.decide_line(w, agent.id, line.id, True, "", NOW)


def test_planning_has_one_row_per_open_day(db, summer):
    days = planning.month_days(summer, date(2027, 7, 1))
    rows = planning.load_planning(db, child(db), summer, days, NOW).rows()
    assert [d for d, _ in rows][:6] == [date(2027, 7, d) for d in (5, 6, 7, 8, 9, 12)]  # no weekend
    assert date(2027, 7, 14) in [d for d, _ in rows]  # a holiday stays, closed with its name


def test_many_days_confirmed_at_once_by_two_parents_never_overbook(app, db, summer):
    """Two 6-day selections over the same full-ish days, confirmed together: places taken in one
    statement, in a fixed order (no deadlock on PostgreSQL), never more than the day's capacity."""
    enroll_everyone(db, summer)
    u = units(db)
    days = [date(2027, 7, d) for d in (19, 20, 22)]
    for day in days:  # one place left on every Matinée and Après-midi; the 22nd has its own capacity of 1
        for code in ("matinee", "apres-midi"):
            capacity = 1 if day.day == 22 else None
            db.add(DaySlot(unit_id=u[code].id, day=day, taken=0 if capacity else u[code].capacity - 1,
                           capacity=capacity))
    db.commit()
    for name, order in (("Zoé", days), ("Rayan", list(reversed(days)))):
        for day in order:
            for code in ("apres-midi", "matinee"):
                planning.toggle(db, child(db, name), summer, u[code].id, day, NOW)
    results = confirm_at_once(app, ("Zoé", "Rayan"), summer)
    db.expire_all()
    lines = [line for r in results.values() for line in db.get(Reservation, r.id).lines]
    assert len(lines) == 12
    for day in days:
        for code in ("matinee", "apres-midi"):
            outcomes = sorted(l.outcome for l in lines if l.day == day and l.unit_id == u[code].id)
            assert outcomes == ["accepted", "waitlist"], (day, code, outcomes)
    assert planning.overbooked(db) == []


def test_state_summary_counts_what_each_line_became():
    def lines(*states, same_day=False):
        return [ReservationLine(reservation_id=1, unit_id=1 + (i % 2 if same_day else 0),
                                day=date(2027, 7, 5 + (i // 2 if same_day else i)), outcome="accepted", state=s)
                for i, s in enumerate(states)]

    assert state_summary(lines(*["accepted"] * 13, *["pending"] * 4)) == "13 jours acceptés, 4 en attente"
    assert state_summary(lines("accepted")) == "1 jour accepté"
    assert state_summary(lines("pending", "refused", "refused")) == "1 jour en attente, 2 refusés"
    assert state_summary(lines("accepted", "accepted", same_day=True)) == "2 cases acceptées"
    assert state_summary(lines("accepted", "pending"), cancellation=True) == "1 annulation acceptée, 1 en attente"


def test_a_day_locked_by_a_booked_journee_says_non_cumulable_not_deadline(app, db, summer):
    """The lock is not a deadline: the cell names the booking in the way."""
    u = units(db)
    planning.toggle(db, child(db), summer, u["journee"].id, date(2027, 7, 8), NOW)
    confirm(app, "Zoé", summer)
    matinee = cell(db, summer, "matinee", date(2027, 7, 8))
    assert matinee.state == "locked" and matinee.label == "Non cumulable avec Journée"
    assert "Verrouillé" not in matinee.words and "Journée est déjà réservé ce jour" in matinee.words
    assert cell(db, summer, "repas", date(2027, 7, 8), now=paris(2027, 7, 7)).label == "Verrouillé (délai dépassé)"  # a deadline
