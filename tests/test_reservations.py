"""Booking screens (guide sections 7-8), with htmx and without JavaScript, and their permissions."""
import re
from datetime import timedelta
from pathlib import Path

from sqlmodel import select

from models import Booking, DraftLine, Establishment, Period, Reservation, ReservationLine, Unit, utcnow
from services import planning
from tests.conftest import csrf_from, page_text
from tests.factories import (
    HX,
    bookable_day,
    centre,
    child,
    planning_url,
    post_cell,
    reservation_with_a_request,
    school_period,
)


def test_family_space_lists_reservations_with_state_and_legend(client, auth, db):
    reservation_with_a_request(db)
    auth.login()
    page = page_text(client.get("/compte/"))
    assert "Nouvelle réservation" in page
    assert re.search(r"R-\d{4}-\d{6}", page)
    assert "En attente de traitement" in page  # the reservation has a request
    assert "2 jours acceptés, 2 en attente" in page  # and says what the rest became
    assert "Légende" in page and "Partiellement acceptée" in page


def test_new_reservation_window_without_javascript(client, auth, db):
    auth.login()
    zoe = child(db, "Zoé")
    est, period, _ = centre(db)
    page = page_text(client.get("/reservations/nouvelle"))
    assert "1. L'enfant" in page and "Zoé Durand" in page and "Noé Durand" in page and "Rayan" not in page
    page = page_text(client.get(f"/reservations/nouvelle?enfant={zoe.id}"))
    assert "Centre de loisirs Les Tilleuls" in page and "Périscolaire école Prévert" in page
    page = page_text(client.get(f"/reservations/nouvelle?enfant={zoe.id}&etablissement={est.id}"))
    assert period.name in page
    response = client.get(f"/reservations/nouvelle?enfant={zoe.id}&etablissement={est.id}&periode={period.id}&continuer=1")
    assert response.status_code == 302 and response.headers["Location"] == planning_url(zoe, period)
    incomplete = page_text(client.get(f"/reservations/nouvelle?enfant={zoe.id}&continuer=1"))
    assert "Choisissez un enfant, un établissement puis une période" in incomplete


def test_new_reservation_window_as_an_htmx_dialog(client, auth, db):
    auth.login()
    zoe = child(db, "Zoé")
    est, period, _ = centre(db)
    response = client.get("/reservations/nouvelle", headers=HX)
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith("<dialog") and "<html" not in html
    assert "HX-Request" in response.headers["Vary"]
    response = client.get(f"/reservations/nouvelle?enfant={zoe.id}&etablissement={est.id}&periode={period.id}&continuer=1", headers=HX)
    assert response.headers["HX-Redirect"] == planning_url(zoe, period)


def test_window_refuses_other_families_children_and_establishments_not_enrolled(client, auth, db):
    auth.login()
    assert client.get(f"/reservations/nouvelle?enfant={child(db, 'Rayan').id}").status_code == 404
    ferry = db.exec(select(Establishment).where(Establishment.name == "Périscolaire école Prévert")).one()
    school_period = db.exec(select(Period).where(Period.establishment_id == ferry.id)).first()
    # Noé is not enrolled there: the establishment is not taken, its periods never shown
    noe = client.get(f"/reservations/nouvelle?enfant={child(db, 'Noé').id}&etablissement={ferry.id}"
                      f"&periode={school_period.id}")
    assert noe.status_code == 200 and school_period.name not in page_text(noe)
    assert 'id="etab-%d"' % ferry.id not in noe.get_data(as_text=True)


def test_planning_page_and_month_fragment(client, auth, db):
    auth.login()
    zoe = child(db, "Zoé")
    _, period, units = centre(db)
    month = planning.period_months(period)[1]
    page = page_text(client.get(planning_url(zoe, period, month)))
    assert "<html" in page and "Planning de Zoé" in page and "Légende" in page
    for label in ("Matinée", "Repas", "Après-midi", "Journée"):
        assert label in page
    for option in ("Sélectionner les jours de la période", "Sélectionner les jours affichés à l'écran",
                   "Désélectionner tous les jours de la période", "Désélectionner uniquement les jours affichés à l'écran",
                   "Sélection automatique des jours"):
        assert option in page
    assert "Valider le planning" in page
    fragment = client.get(planning_url(zoe, period, month), headers=HX)
    html = fragment.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="planning-month"') and "<html" not in html
    assert "HX-Request" in fragment.headers["Vary"]


def test_every_planning_route_checks_the_family(client, auth, db):
    auth.login()  # Durand family
    rayan = child(db, "Rayan")
    _, period, units = centre(db)
    token = csrf_from(client.get("/compte/").get_data(as_text=True))
    base = f"/reservations/planning/{rayan.id}/{period.id}"
    assert client.get(base).status_code == 404
    assert client.get(base, headers=HX).status_code == 404
    assert client.get(base + "/recapitulatif").status_code == 404
    assert client.get(base + f"/automatique?unite={units['matinee'].id}", headers=HX).status_code == 404
    day = period.start_date + timedelta(days=20)
    for path, data in ((base + "/cellule", {"cellule": f"{day}.{units['matinee'].id}"}),
                       (base + "/lot", {"unite": units["matinee"].id, "action": "periode"}),
                       (base + "/confirmer", {"revision": 0})):
        assert client.post(path, data={"csrf_token": token, **data}, headers=HX).status_code == 404
    assert db.exec(select(DraftLine)).all() == []
    # Noé is not enrolled at the périscolaire: its period is out of reach
    assert client.get(planning_url(child(db, "Noé"), school_period(db))).status_code == 404
    # another family's reservation
    other = reservation_with_a_request(db)
    auth.logout()
    auth.login("rayan.parent@tilleuls.test")
    assert client.get(f"/reservations/{other.id}").status_code == 404


def test_cell_toggle_with_htmx_returns_the_cell_and_the_counter(client, auth, db):
    auth.login()
    zoe = child(db, "Zoé")
    _, period, units = centre(db)
    day = bookable_day(db, period, units["repas"], zoe)
    response = post_cell(client, zoe, period, units["repas"], day)
    html = page_text(response)
    assert response.status_code == 200
    assert html.lstrip().startswith(f'<td id="cell-{day.isoformat()}-repas"')
    assert "Sélectionné : réservation acceptée (à confirmer)" in html
    assert 'id="planning-counter"' in html and "hx-swap-oob" in html and "<strong>1</strong> case sélectionnée" in html
    assert len(db.exec(select(DraftLine)).all()) == 1
    html = page_text(post_cell(client, zoe, period, units["repas"], day))
    assert "Disponible" in html and "<strong>0</strong> case sélectionnée" in html
    assert db.exec(select(DraftLine)).all() == []


def test_journee_click_redraws_the_cells_it_cleared(client, auth, db):
    auth.login()
    zoe = child(db, "Zoé")
    _, period, units = centre(db)
    day = bookable_day(db, period, units["journee"], zoe)
    post_cell(client, zoe, period, units["apres-midi"], day)
    html = page_text(post_cell(client, zoe, period, units["journee"], day))
    assert f'id="cell-{day.isoformat()}-apres-midi" class="cell cell--available" hx-swap-oob="outerHTML"' in html
    assert "retiré (non cumulable)" in html


def test_cell_toggle_without_javascript_redirects_to_the_month(client, auth, db):
    auth.login()
    zoe = child(db, "Zoé")
    _, period, units = centre(db)
    day = bookable_day(db, period, units["repas"], zoe)
    response = post_cell(client, zoe, period, units["repas"], day, htmx=False)
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"?mois={day:%Y-%m}#cell-{day.isoformat()}-repas")
    page = page_text(client.get(response.headers["Location"]))
    assert "sélectionné, réservation acceptée (à confirmer)" in page


def test_locked_and_forged_cells_change_nothing(client, auth, db):
    auth.login()
    zoe = child(db, "Zoé")
    _, period, units = centre(db)
    plan = planning.load_planning(db, zoe, period, planning.all_period_days(period), utcnow())
    past = next(d for d in plan.days if plan.cell(units["repas"], d).reason == "Date passée")  # a weekday gone by
    html = page_text(post_cell(client, zoe, period, units["repas"], past))
    assert "Date passée" in html and "planning-message--error" in html
    token = csrf_from(client.get("/compte/").get_data(as_text=True))
    url = f"/reservations/planning/{zoe.id}/{period.id}/cellule"
    ferry_unit = db.exec(select(Unit).where(Unit.code == "accueil-matin")).one()
    day = period.start_date + timedelta(days=20)
    assert client.post(url, data={"csrf_token": token, "cellule": f"{day}.{ferry_unit.id}"}, headers=HX).status_code == 404
    outside = period.end_date + timedelta(days=3)
    assert client.post(url, data={"csrf_token": token, "cellule": f"{outside}.{units['repas'].id}"}, headers=HX).status_code == 400
    assert client.post(url, data={"csrf_token": token, "cellule": "n'importe quoi"}, headers=HX).status_code == 400
    assert db.exec(select(DraftLine)).all() == []


def test_bulk_selection_of_the_screen_and_deselection(client, auth, db):
    auth.login()
    zoe = child(db, "Zoé")
    _, period, units = centre(db)
    month = planning.period_months(period)[1]
    token = csrf_from(client.get(planning_url(zoe, period, month)).get_data(as_text=True))
    url = f"/reservations/planning/{zoe.id}/{period.id}/lot"
    html = page_text(client.post(url, data={"csrf_token": token, "unite": units["repas"].id, "action": "ecran", "mois": f"{month:%Y-%m}"}, headers=HX))
    selected = len(db.exec(select(DraftLine)).all())
    assert selected > 5
    assert f"Repas : {selected} jours sélectionnés." in html
    assert {l.day.month for l in db.exec(select(DraftLine))} == {month.month}
    client.post(url, data={"csrf_token": token, "unite": units["repas"].id, "action": "deselection-periode", "mois": f"{month:%Y-%m}"})
    assert db.exec(select(DraftLine)).all() == []


def test_automatic_selection_dialog(client, auth, db):
    auth.login()
    zoe = child(db, "Zoé")
    _, period, units = centre(db)
    url = f"/reservations/planning/{zoe.id}/{period.id}/automatique"
    dialog = page_text(client.get(url + f"?unite={units['matinee'].id}", headers=HX))
    assert dialog.lstrip().startswith("<dialog") and "Sélection automatique des jours" in dialog
    for words in ("Cochez les jours souhaités", "Sur toute la période", "Uniquement sur la semaine affichée", "Valider"):
        assert words in dialog
    token = csrf_from(client.get(url + f"?unite={units['matinee'].id}").get_data(as_text=True))
    empty = client.post(url, data={"csrf_token": token, "unite": units["matinee"].id, "portee": "period"}, headers=HX)
    assert empty.status_code == 200 and empty.headers["HX-Retarget"] == "#auto-dialog"
    assert "Cochez au moins un jour de la semaine." in page_text(empty)
    done = client.post(url, data={"csrf_token": token, "unite": units["matinee"].id, "portee": "period", "jours": ["0", "2"]}, headers=HX)
    assert done.headers["HX-Trigger"] == "ribambelle:close-dialog"
    days = [l.day for l in db.exec(select(DraftLine))]
    assert days and {d.weekday() for d in days} <= {0, 2}


def test_recap_confirm_and_replay(client, auth, db, smtp):
    auth.login()
    zoe = child(db, "Zoé")
    _, period, units = centre(db)
    day = bookable_day(db, period, units["apres-midi"], zoe)
    post_cell(client, zoe, period, units["apres-midi"], day)
    recap = page_text(client.get(f"/reservations/planning/{zoe.id}/{period.id}/recapitulatif"))
    assert "Retour au planning" in recap and "Confirmer la réservation" in recap and "Après-midi" in recap
    token = csrf_from(recap)
    revision = re.search(r'name="revision" value="(\d+)"', recap).group(1)
    url = f"/reservations/planning/{zoe.id}/{period.id}/confirmer"
    first = client.post(url, data={"csrf_token": token, "revision": revision})
    assert first.status_code == 302 and "terminer=1" in first.headers["Location"]
    summary = page_text(client.get(first.headers["Location"]))
    assert "Votre réservation est enregistrée" in summary and "Terminer" in summary
    assert "Zoé Durand" in summary and period.name in summary and "Acceptée" in summary
    number = re.search(r"R-\d{4}-\d{6}", summary).group(0)
    # the same form again (double click, back button): one reservation
    again = client.post(url, data={"csrf_token": token, "revision": revision})
    assert again.headers["Location"] == first.headers["Location"]
    assert db.exec(select(Reservation).where(Reservation.number == number)).one()
    assert len(db.exec(select(Booking).where(Booking.child_id == zoe.id, Booking.day == day,
                                             Booking.unit_id == units["apres-midi"].id)).all()) == 1
    home = page_text(client.get("/compte/"))
    assert number in home


def test_legend_fragment_lists_every_state(client):
    html = page_text(client.get("/reservations/legende", headers=HX))
    assert "<html" not in html
    assert "<h2>États des jours du planning</h2>" in html and "<h2>États des réservations</h2>" in html
    for words in ("Fermé", "Disponible", "Sélectionné (à confirmer)", "Réservé (réservation acceptée)", "Demande de réservation",
                  "Liste d'attente", "Demande d'annulation", "Annulation sélectionnée (à confirmer)", "Complet",
                  "Verrouillé (délai dépassé)"):
        assert words in html


def test_agent_accepts_a_request_and_the_family_is_mailed(client, auth, db, smtp):
    reservation_with_a_request(db)
    auth.login("agent@tilleuls.test")
    page = page_text(client.get("/agent/reservations"))
    assert "Demande de réservation" in page and "Zoé Durand" in page
    line = db.exec(select(ReservationLine).where(ReservationLine.state == "pending", ReservationLine.outcome == "request")).one()
    token = csrf_from(page)
    refused = client.post(f"/agent/reservations/lignes/{line.id}", data={"csrf_token": token, "action": "refuse", "message": ""})
    assert refused.status_code == 302
    db.expire_all()
    assert db.get(ReservationLine, line.id).state == "pending"
    client.post(f"/agent/reservations/lignes/{line.id}", data={"csrf_token": token, "action": "accept", "message": "À bientôt"})
    db.expire_all()
    assert db.get(ReservationLine, line.id).state == "accepted"
    assert db.get(Reservation, line.reservation_id).status == "pending"  # its waiting-list line is still open
    mail = smtp.wait_for("zoe.parent@tilleuls.test")[0]
    assert "acceptée" in mail["Subject"] and "À bientôt" in smtp.text(mail)
    auth.logout()
    auth.login()
    detail = page_text(client.get(f"/reservations/{line.reservation_id}"))
    assert "Demande acceptée" in detail and "Message de la structure : À bientôt" in detail and "Liste d'attente" in detail


def test_agent_pages_are_closed_to_parents(client, auth):
    auth.login()
    assert client.get("/agent/reservations").status_code == 403


def test_agent_decides_a_whole_reservation_at_once(client, auth, db, smtp):
    reservation_with_a_request(db)
    auth.login("agent@tilleuls.test")
    page = page_text(client.get("/agent/reservations"))
    assert "Tout accepter" in page
    reservation = db.exec(select(Reservation).where(Reservation.status == "pending")).one()
    token = csrf_from(page)
    client.post(f"/agent/reservations/{reservation.id}/decision", data={"csrf_token": token, "action": "refuse", "message": "Plus de place"})
    db.expire_all()
    lines = db.exec(select(ReservationLine).where(ReservationLine.reservation_id == reservation.id)).all()
    assert sorted(l.state for l in lines) == ["accepted", "accepted", "refused", "refused"]
    assert db.get(Reservation, reservation.id).status == "partial"
    mail = smtp.wait_for("zoe.parent@tilleuls.test")[0]
    assert "refusé" in smtp.text(mail) and "Plus de place" in smtp.text(mail) and "Journée" in smtp.text(mail)


def test_the_only_open_period_comes_ticked_once_and_the_window_leads_without_javascript(client, auth, db):
    auth.login()
    zoe = child(db, "Zoé")
    est, period, _ = centre(db)
    html = page_text(client.get(f"/reservations/nouvelle?enfant={zoe.id}&etablissement={est.id}"))
    assert re.search(rf'id="periode-{period.id}" value="{period.id}" checked', html)
    assert html.count(f"{period.start_date:%d/%m}") == 1  # its name says its dates: not said twice
    # Everything chosen: "Continuer" leads. Before that, without JavaScript, "Afficher les choix suivants" does.
    assert 'class="button button--primary" name="continuer"' in html
    first = page_text(client.get("/reservations/nouvelle"))
    assert '<noscript><button type="submit" class="button button--primary">Afficher les choix suivants' in first
    assert 'class="button button--primary primary-with-js" name="continuer"' in first


def book_every_morning(client, pupil, period, unit):
    """Zoé booked on every morning of the period (confirmed as a parent does it, without JavaScript)."""
    token = csrf_from(client.get(planning_url(pupil, period)).get_data(as_text=True))
    client.post(f"/reservations/planning/{pupil.id}/{period.id}/lot",
                data={"csrf_token": token, "unite": unit.id, "action": "periode"})
    recap = page_text(client.get(f"/reservations/planning/{pupil.id}/{period.id}/recapitulatif"))
    revision = re.search(r'name="revision" value="(\d+)"', recap).group(1)
    client.post(f"/reservations/planning/{pupil.id}/{period.id}/confirmer", data={"csrf_token": token, "revision": revision})
    return token


def test_cancelling_every_booked_day_at_once_asks_first(client, auth, db):
    auth.login()
    zoe = child(db, "Zoé")
    _, period, units = centre(db)
    token = book_every_morning(client, zoe, period, units["matinee"])
    booked = len(db.exec(select(Booking).where(Booking.child_id == zoe.id, Booking.unit_id == units["matinee"].id)).all())
    lot = f"/reservations/annulation/planning/{zoe.id}/{period.id}/lot"
    form = {"csrf_token": token, "unite": units["matinee"].id, "action": "deselection-periode"}
    cancels = select(DraftLine).where(DraftLine.action == "cancel")

    asked = page_text(client.post(lot, data=form))  # without JavaScript: a page that asks
    marked = re.search(r"Vous allez demander l'annulation de <strong>(\d+) jours réservés</strong>", asked)
    assert marked and 3 < int(marked.group(1)) <= booked
    assert "Rien n'est annulé avant « Confirmer la demande d'annulation »" in asked
    assert db.exec(cancels).all() == []  # nothing marked yet

    dialog = client.post(lot, data=form, headers=HX)  # with htmx: the same question in a dialog
    assert dialog.headers["HX-Retarget"] == "body" and page_text(dialog).lstrip().startswith("<dialog")
    assert db.exec(cancels).all() == []

    done = client.post(lot, data={**form, "confirme": "1"})
    assert done.status_code == 302
    assert len(db.exec(cancels).all()) == int(marked.group(1))


def test_the_unit_menu_says_what_deselecting_does_in_cancellation_mode(client, auth, db):
    auth.login()
    zoe = child(db, "Zoé")
    _, period, _ = centre(db)
    page = page_text(client.get(f"/reservations/annulation/planning/{zoe.id}/{period.id}"))
    assert ("Désélectionner tous les jours de la période<span class=\"menu-detail\"> (demander l'annulation de tous "
            "les jours réservés de la période)") in page


def test_the_automatic_selection_applies_to_the_week_chosen(client, auth, db):
    auth.login()
    zoe = child(db, "Zoé")
    _, period, units = centre(db)
    months = planning.period_months(period)
    month = months[-1]
    weeks = planning.month_weeks(period, month)
    url = f"/reservations/planning/{zoe.id}/{period.id}/automatique"
    dialog = page_text(client.get(f"{url}?unite={units['matinee'].id}&mois={month:%Y-%m}", headers=HX))
    assert "Uniquement sur la semaine affichée" in dialog and '<label for="semaine">Semaine</label>' in dialog
    token = csrf_from(dialog)
    week = weeks[-1]
    done = client.post(url, headers=HX, data={"csrf_token": token, "unite": units["matinee"].id, "mois": f"{month:%Y-%m}",
                                              "portee": "week", "semaine": week.isoformat(), "jours": ["0", "1", "2", "3", "4"]})
    assert done.status_code == 200
    days = {line.day for line in db.exec(select(DraftLine).where(DraftLine.unit_id == units["matinee"].id))}
    assert days and all(week <= day < week + timedelta(days=7) for day in days)
    outside = client.post(url, headers=HX, data={"csrf_token": token, "unite": units["matinee"].id, "mois": f"{month:%Y-%m}",
                                                 "portee": "week", "semaine": "2001-01-01", "jours": ["0"]})
    assert outside.status_code == 400 and "n'est pas dans le mois affiché" in page_text(outside)


def test_a_click_after_the_session_cookie_is_gone_sends_the_page_to_the_login(client, auth, db):
    auth.login()
    zoe = child(db, "Zoé")
    _, period, units = centre(db)
    day = bookable_day(db, period, units["matinee"], zoe)
    post_cell(client, zoe, period, units["matinee"], day)  # a day selected before the cookie went
    url = f"/reservations/planning/{zoe.id}/{period.id}/cellule"
    data = {"cellule": f"{day.isoformat()}.{units['apres-midi'].id}", "mois": f"{day:%Y-%m}"}
    stale = client.post(url, data={**data, "csrf_token": "un-jeton-perime"}, headers=HX)
    assert stale.status_code == 204 and stale.headers["HX-Refresh"] == "true"  # drawn again, not a silent 400
    client.raw.delete_cookie("ribambelle_session")  # the browser dropped the cookie at its Expires
    gone = client.post(url, data={**data, "csrf_token": "un-jeton-perime"}, headers=HX)
    assert gone.status_code == 204 and gone.headers["HX-Redirect"] == "/"
    assert "Votre session a expiré" in page_text(client.get("/"))
    assert len(db.exec(select(DraftLine)).all()) == 1  # what was selected is kept in the draft


def test_the_legend_draws_each_state_with_its_own_icon(client):
    html = page_text(client.get("/reservations/legende"))
    drawn = re.findall(r'sprite\.svg#state-([a-z-]+)" alt="" width="20" height="20"> ([^<]+)</li>', html)
    words = {}
    for icon, word in drawn:
        words.setdefault(icon, set()).add(word.strip())
    # "Réservé" and "Acceptée", "Demande de réservation" and "En attente de traitement" say one thing;
    # "À annuler" and "Refusée" do not: they were both a cross.
    same = {"booked": {"Réservé (réservation acceptée)", "Acceptée"},
            "request": {"Demande de réservation", "En attente de traitement"}}
    assert {icon: ws for icon, ws in words.items() if len(ws) > 1} == same
    assert words["cancel-selected"] == {"Annulation sélectionnée (à confirmer)"} and words["refused"] == {"Refusée"}
    crosses = [p.name for p in (Path(__file__).resolve().parent.parent / "static" / "icons").glob("state-*.svg")
               if "M9 9l6 6M15 9l-6 6" in p.read_text()]
    assert crosses == ["state-refused.svg"]
