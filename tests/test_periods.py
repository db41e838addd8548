"""Periods configured by an admin (issue 6): the form's rules, holidays proposed, overlapping periods,
changes that remove booked days (shown, confirmed, families told), closed days and per-day capacities."""
from datetime import date, datetime, time, timedelta, timezone

from sqlmodel import select

from db import get_db
from models import (
    AuditEntry,
    Booking,
    Child,
    ClosedDay,
    DaySlot,
    OutboxMail,
    Period,
    PeriodUnit,
    ReservationLine,
    Unit,
)
from services import planning
from services.formatting import PARIS
from tests.conftest import page_text
from tests.factories import centre, reservation_with_a_request, town_period


def period_form(period: Period, units: dict, **changes) -> dict:
    """What the period page posts for ``period``, every unit open Monday to Friday, with ``changes``."""
    data = {
        "name": period.name, "start_date": period.start_date.isoformat(), "end_date": period.end_date.isoformat(),
        "booking_opens_at": period.booking_opens_at.astimezone(PARIS).strftime("%Y-%m-%dT%H:%M")
        if period.booking_opens_at.tzinfo else "2026-01-01T08:00",
        "booking_closes_at": (datetime.combine(period.end_date, time(18, 0))).strftime("%Y-%m-%dT%H:%M"),
        "auto_accept_days": "8", "min_days": "2", "cancel_auto_days": "8", "cancel_min_days": "2",
        "cutoff_time": "23:59", "working_days": "0", "surcharge_percent": "20",
    }
    for unit in units.values():
        data[f"unite-{unit.id}"] = "1"
        data[f"jours-{unit.id}"] = ["0", "1", "2", "3", "4"]
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


WINTER = {"name": "Vacances d'hiver 2027", "start_date": "2027-02-15", "end_date": "2027-02-26",
          "booking_opens_at": "2027-01-04T08:00", "booking_closes_at": "2027-02-10T18:00",
          "auto_accept_days": "10", "min_days": "3", "cancel_auto_days": "7", "cancel_min_days": "1",
          "cutoff_time": "12:00", "working_days": "1", "waitlist_auto": "y", "surcharge_percent": "25"}


def test_admin_creates_a_period_with_units_weekdays_and_deadlines(client, auth, db):
    auth.login("admin@tilleuls.test")
    est, _, units = centre(db)
    data = {**WINTER, f"unite-{units['matinee'].id}": "1", f"jours-{units['matinee'].id}": ["0", "1", "2", "3", "4"],
            f"unite-{units['repas'].id}": "1", f"jours-{units['repas'].id}": ["0", "1", "3", "4"]}
    response = client.submit(f"/admin/etablissements/{est.id}/periodes/nouvelle", data, follow_redirects=True)
    assert "La période « Vacances d'hiver 2027 » est enregistrée." in page_text(response)
    period = db.exec(select(Period).where(Period.name == "Vacances d'hiver 2027")).one()
    assert (period.start_date, period.end_date) == (date(2027, 2, 15), date(2027, 2, 26))
    opens = period.booking_opens_at.replace(tzinfo=period.booking_opens_at.tzinfo or timezone.utc)
    assert opens == datetime(2027, 1, 4, 7, 0, tzinfo=timezone.utc)  # 08:00 in Paris, winter time
    assert (period.auto_accept_days, period.min_days, period.cancel_auto_days, period.cancel_min_days) == (10, 3, 7, 1)
    assert period.cutoff_time == time(12, 0) and period.working_days and period.waitlist_auto
    assert period.surcharge_percent == 25
    offered = {pu.unit_id: pu.weekdays for pu in db.exec(select(PeriodUnit).where(PeriodUnit.period_id == period.id))}
    assert offered == {units["matinee"].id: "01234", units["repas"].id: "0134"}
    entry = db.exec(select(AuditEntry).where(AuditEntry.target == "period", AuditEntry.target_id == period.id)).one()
    assert entry.after["unites"] == {str(units["matinee"].id): "01234", str(units["repas"].id): "0134"}
    assert "Vacances d'hiver 2027" in page_text(client.get(f"/admin/etablissements/{est.id}"))


def test_public_holidays_are_proposed_closed_and_can_be_reopened(client, auth, db):
    auth.login("admin@tilleuls.test")
    est, _, units = centre(db)
    data = {**WINTER, "name": "Mai 2027", "start_date": "2027-05-03", "end_date": "2027-05-28",
            "booking_opens_at": "2027-04-01T08:00", "booking_closes_at": "2027-05-20T18:00",
            f"unite-{units['matinee'].id}": "1", f"jours-{units['matinee'].id}": ["0", "1", "2", "3", "4"]}
    page = page_text(client.submit(f"/admin/etablissements/{est.id}/periodes/nouvelle", data, follow_redirects=True))
    assert "3 jours fériés fermés d'office" in page
    period = db.exec(select(Period).where(Period.name == "Mai 2027")).one()
    closed = {c.day: c.reason for c in db.exec(select(ClosedDay).where(ClosedDay.period_id == period.id))}
    assert closed == {date(2027, 5, 6): "Jour férié : Ascension", date(2027, 5, 8): "Jour férié : Fête de la Victoire",
                      date(2027, 5, 17): "Jour férié : Lundi de Pentecôte"}
    # The town opens on Whit Monday (journée de solidarité): reopened, the day can be booked.
    pentecote = db.exec(select(ClosedDay).where(ClosedDay.day == date(2027, 5, 17))).one()
    response = client.submit(f"/admin/periodes/{period.id}", {},
                             action=f"/admin/periodes/{period.id}/fermetures/{pentecote.id}/rouvrir", follow_redirects=True)
    assert "Le 17/05/2027 est de nouveau ouvert à la réservation." in page_text(response)
    assert "Lundi de Pentecôte (17/05/2027)" in page_text(response)  # still proposed
    db.expire_all()
    zoe = db.exec(select(Child).where(Child.first_name == "Zoé")).one()
    now = datetime(2027, 4, 20, 10, tzinfo=PARIS)
    cells = planning.load_planning(db, zoe, db.get(Period, period.id), [date(2027, 5, 17), date(2027, 5, 6)], now)
    assert cells.cell(units["matinee"], date(2027, 5, 17)).state == "available"
    assert cells.cell(units["matinee"], date(2027, 5, 6)).reason == "Jour férié : Ascension"
    client.submit(f"/admin/periodes/{period.id}", {"feries": "1"}, action=f"/admin/periodes/{period.id}/fermetures")
    assert db.exec(select(ClosedDay).where(ClosedDay.day == date(2027, 5, 17))).one().reason == "Jour férié : Lundi de Pentecôte"


def test_period_form_rules_keep_what_was_typed(client, auth, db):
    auth.login("admin@tilleuls.test")
    est, _, units = centre(db)
    url = f"/admin/etablissements/{est.id}/periodes/nouvelle"
    empty = client.submit(url, {"name": ""})
    assert empty.status_code == 200
    page = page_text(empty)
    assert "Le formulaire n'a pas été enregistré." in page and "Ce champ est obligatoire." in page
    assert "Indiquez une date (jj/mm/aaaa)." in page
    assert "Cochez au moins une unité" in page
    bad = {**WINTER, "end_date": "2027-02-01", "booking_closes_at": "2027-01-01T08:00", "min_days": "12",
           "cancel_min_days": "9", "surcharge_percent": "-5",
           f"unite-{units['repas'].id}": "1", f"jours-{units['repas'].id}": ["0", "3"]}
    page = page_text(client.submit(url, bad))
    assert "Le dernier jour doit être après le premier jour." in page
    assert "La fermeture des réservations doit être après leur ouverture." in page
    assert "Ne peut pas dépasser « Acceptation immédiate à partir de (jours avant) » (10 jours)." in page
    assert "Ne peut pas dépasser « Annulation acceptée d'office à partir de (jours avant) » (7 jours)." in page
    assert "Un pourcentage entre 0 et 200." in page
    assert 'value="Vacances d\'hiver 2027"' in page and 'value="2027-02-01"' in page  # kept
    assert f'name="jours-{units["repas"].id}" id="jours-{units["repas"].id}-3" value="3" checked' in page
    assert f'name="jours-{units["repas"].id}" id="jours-{units["repas"].id}-1" value="1">' in page
    late = {**WINTER, "booking_closes_at": "2027-03-10T18:00", f"unite-{units['repas'].id}": "1",
            f"jours-{units['repas'].id}": ["0"]}
    assert "au plus tard le dernier jour de la période" in page_text(client.submit(url, late))
    huge = {**WINTER, "name": "x" * 5_000_000, f"unite-{units['repas'].id}": "1", f"jours-{units['repas'].id}": ["0"]}
    too_long = client.submit(url, huge)  # 5 MB of name: under the 10 MB a request may weigh, refused by the form
    assert too_long.status_code == 200 and "150 caractères au maximum." in page_text(too_long)
    other = db.exec(select(Unit).where(Unit.establishment_id != est.id)).first()
    forged = client.submit(url, {**WINTER, f"unite-{other.id}": "1", f"jours-{other.id}": ["0"]})
    assert forged.status_code == 404
    assert db.exec(select(Period).where(Period.name.like("Vacances d'hiver%"))).all() == []


def test_overlapping_periods_are_warned_before_saving(client, auth, db):
    auth.login("admin@tilleuls.test")
    est, current, units = centre(db)
    start = current.end_date - timedelta(days=3)
    data = {**WINTER, "name": "Chevauchement", "start_date": start.isoformat(),
            "end_date": (start + timedelta(days=10)).isoformat(),
            "booking_opens_at": f"{start - timedelta(days=30)}T08:00", "booking_closes_at": f"{start}T18:00",
            f"unite-{units['matinee'].id}": "1", f"jours-{units['matinee'].id}": ["0", "1"]}
    url = f"/admin/etablissements/{est.id}/periodes/nouvelle"
    page = page_text(client.submit(url, data))
    assert "Ces dates chevauchent une autre période de l'établissement" in page and current.name in page
    assert "Enregistrer quand même" in page
    assert db.exec(select(Period).where(Period.name == "Chevauchement")).first() is None
    client.submit(url, {**data, "confirmer": f"|{current.id}"})
    assert db.exec(select(Period).where(Period.name == "Chevauchement")).one()


def test_removing_booked_days_shows_the_bookings_then_frees_them_and_tells_the_families(client, auth, db):
    reservation_with_a_request(db)
    auth.login("admin@tilleuls.test")
    _, period, units = centre(db)
    zoe = db.exec(select(Child).where(Child.first_name == "Zoé")).one()
    booked = [(b.id, b.unit_id, b.day, b.status, b.line_id) for b in db.exec(
        select(Booking).where(Booking.child_id == zoe.id, Booking.day >= date.today()).order_by(Booking.day))]
    first_day = booked[0][2]
    url = f"/admin/periodes/{period.id}"
    # The period now ends the day before Zoé's first booked day: all four of her days would go.
    shorter = period_form(period, units, end_date=(first_day - timedelta(days=1)).isoformat(),
                          booking_closes_at=f"{first_day - timedelta(days=1)}T08:00")
    page = page_text(client.submit(url, shorter))
    assert "rien n'est encore modifié" in page and "Réservations concernées" in page
    assert page.count("En dehors des nouvelles dates") >= 4 and "Zoé Durand" in page
    assert "Confirmer et prévenir les familles" in page
    db.expire_all()
    assert db.get(Period, period.id).end_date == period.end_date
    assert len(db.exec(select(Booking).where(Booking.child_id == zoe.id, Booking.day >= date.today())).all()) == 4
    # A forged or stale confirmation is asked again, not applied.
    assert "rien n'est encore modifié" in page_text(client.submit(url, {**shorter, "confirmer": "1,2|"}))
    key = page.split('name="confirmer" value="')[1].split('"')[0]
    slots_before = {(s.unit_id, s.day): s.taken for s in db.exec(select(DaySlot))}
    done = page_text(client.submit(url, {**shorter, "confirmer": key}, follow_redirects=True))
    assert "les familles sont prévenues par mail" in done
    db.expire_all()
    assert db.get(Period, period.id).end_date == first_day - timedelta(days=1)
    assert db.exec(select(Booking).where(Booking.child_id == zoe.id, Booking.day >= first_day)).all() == []
    for _, unit_id, day, status, line_id in booked:
        if status in ("accepted", "request"):
            assert db.get(DaySlot, (unit_id, day)).taken == slots_before[(unit_id, day)] - 1
        line = db.get(ReservationLine, line_id)
        assert line.state == "refused" and "Jour retiré par la structure" in line.message
    mail = db.exec(select(OutboxMail).where(OutboxMail.recipient == "zoe.parent@tilleuls.test",
                                            OutboxMail.subject.like("Modification de la période%"))).one()
    assert "Zoé" in mail.body_text and "ne seront pas facturés" in mail.body_text
    assert f"{first_day.day}" in mail.body_text
    staff_page = page_text(client.get(f"/agent/familles/{zoe.family_id}"))
    assert "Réservation retirée" in staff_page
    # The parent sees the day refused, with the word.
    auth.logout()
    auth.login("zoe.parent@tilleuls.test")
    reservation_page = page_text(client.get(f"/reservations/{db.get(ReservationLine, booked[0][4]).reservation_id}"))
    assert "Jour retiré par la structure" in reservation_page


def test_withdrawing_a_weekday_only_touches_that_weekday(client, auth, db):
    reservation_with_a_request(db)
    auth.login("admin@tilleuls.test")
    _, period, units = centre(db)
    zoe = db.exec(select(Child).where(Child.first_name == "Zoé")).one()
    booked = db.exec(select(Booking).where(Booking.child_id == zoe.id, Booking.day >= date.today())).all()
    weekday = booked[0].day.weekday()
    kept = [str(d) for d in range(5) if d != weekday]
    data = period_form(period, units, **{f"jours-{booked[0].unit_id}": kept})
    page = page_text(client.submit(f"/admin/periodes/{period.id}", data))
    expected = [b for b in booked if b.unit_id == booked[0].unit_id and b.day.weekday() == weekday]
    assert page.count("n'est plus proposé le") == len(expected)
    key = page.split('name="confirmer" value="')[1].split('"')[0]
    assert key.split("|")[0] == ",".join(str(b.id) for b in sorted(expected, key=lambda b: b.day))
    client.submit(f"/admin/periodes/{period.id}", {**data, "confirmer": key})
    remaining = {b.id for b in db.exec(select(Booking).where(Booking.child_id == zoe.id, Booking.day >= date.today()))}
    assert remaining == {b.id for b in booked} - {b.id for b in expected}


def test_closing_a_booked_day_asks_first(client, auth, db):
    reservation_with_a_request(db)
    auth.login("admin@tilleuls.test")
    period = town_period(db)
    zoe = db.exec(select(Child).where(Child.first_name == "Zoé")).one()
    booking = db.exec(select(Booking).where(Booking.child_id == zoe.id, Booking.status == "accepted",
                                            Booking.day >= date.today())).first()
    booking_id, booking_day = booking.id, booking.day
    url, action = f"/admin/periodes/{period.id}", f"/admin/periodes/{period.id}/fermetures"
    data = {"fermeture-day": booking.day.isoformat(), "fermeture-reason": "Sortie du personnel"}
    page = page_text(client.submit(url, data, action=action))
    assert "rien n'est encore fermé" in page and "Zoé Durand" in page and "Jour fermé" in page
    assert db.exec(select(ClosedDay).where(ClosedDay.day == booking.day)).first() is None
    key = page.split('name="confirmer" value="')[1].split('"')[0]
    client.submit(url, {**data, "confirmer": key}, action=action)
    db.expire_all()
    assert db.exec(select(ClosedDay).where(ClosedDay.day == booking_day)).one().reason == "Sortie du personnel"
    assert db.get(Booking, booking_id) is None
    # a day outside the period, or already closed, is refused with a French message
    outside = page_text(client.submit(url, {"fermeture-day": (period.end_date + timedelta(days=3)).isoformat(),
                                            "fermeture-reason": "x"}, action=action))
    assert "Choisissez un jour de la période" in outside
    again = page_text(client.submit(url, data, action=action))
    assert "Ce jour est déjà fermé." in again


def test_a_day_with_its_own_capacity_fills_at_that_capacity(client, auth, db):
    auth.login("admin@tilleuls.test")
    _, period, units = centre(db)
    day = date.today() + timedelta(days=20)
    while day.weekday() > 4 or db.exec(select(ClosedDay).where(ClosedDay.day == day)).first():
        day += timedelta(days=1)
    url, action = f"/admin/periodes/{period.id}", f"/admin/periodes/{period.id}/capacites"
    page = page_text(client.submit(url, {"capacite-unit": str(units["repas"].id), "capacite-day": day.isoformat(),
                                         "capacite-capacity": "0"}, action=action, follow_redirects=True))
    assert f"Capacité de Repas le {day:%d/%m/%Y} enregistrée." in page
    noe = db.exec(select(Child).where(Child.first_name == "Noé")).one()
    db.expire_all()
    now = datetime.now(timezone.utc)
    cells = planning.load_planning(db, noe, db.get(Period, period.id), [day], now)
    assert cells.cell(units["repas"], day).state == "full"
    assert cells.cell(units["matinee"], day).state == "available"
    client.submit(url, {"capacite-unit": str(units["repas"].id), "capacite-day": day.isoformat(),
                        "capacite-capacity": ""}, action=action)
    db.expire_all()
    assert db.get(DaySlot, (units["repas"].id, day)).capacity is None
    cells = planning.load_planning(db, noe, db.get(Period, period.id), [day], now)
    assert cells.cell(units["repas"], day).state == "available"
    forged = client.submit(url, {"capacite-unit": str(units["repas"].id + 100), "capacite-day": day.isoformat(),
                                 "capacite-capacity": "3"}, action=action)
    assert forged.status_code == 422 and "Choisissez une unité proposée dans la période." in page_text(forged)


def test_places_are_taken_at_the_days_own_capacity(app, db):
    units = centre(db)[2]
    day = date.today() + timedelta(days=21)
    db.add(DaySlot(unit_id=units["repas"].id, day=day, taken=1, capacity=1))
    db.commit()
    with app.app_context():
        session = get_db()
        assert planning.take_place(session, session.get(Unit, units["repas"].id), day) is False
        assert planning.take_place(session, session.get(Unit, units["matinee"].id), day) is True
        session.rollback()
