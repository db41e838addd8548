"""Configuration by an admin (issue 6, first part): establishments and units, roles, the audit log."""
from datetime import date

from sqlmodel import select

from models import AuditEntry, Child, Enrollment, Establishment, Family, Period, Unit, UnitExclusion
from tests.conftest import page_text
from tests.factories import billed_month, child, reservation_with_a_request

ADMIN_URLS = ["/admin/", "/admin/etablissements/nouveau", "/admin/etablissements/1", "/admin/etablissements/1/unites/nouvelle",
              "/admin/unites/1", "/admin/etablissements/1/inscriptions", "/admin/etablissements/1/periodes/nouvelle",
              "/admin/periodes/1"]
ADMIN_ACTIONS = ["/admin/periodes/1", "/admin/periodes/1/fermetures", "/admin/periodes/1/fermetures/1/rouvrir",
                 "/admin/periodes/1/capacites"]


def test_only_admins_reach_the_configuration(client, auth):
    for path in ADMIN_URLS:
        assert client.get(path).status_code == 302  # visitors: the login page
    for email in ("zoe.parent@tilleuls.test", "agent@tilleuls.test"):
        auth.login(email)
        for path in ADMIN_URLS:
            assert client.get(path).status_code == 403, (email, path)
        for path in ADMIN_ACTIONS:  # posting with a valid CSRF token does not help
            assert client.submit("/", {"feries": "1"}, action=path).status_code == 403, (email, path)
        auth.logout()
    auth.login("admin@tilleuls.test")
    for path in ADMIN_URLS:
        response = client.get(path)
        assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert "Configuration" in page_text(client.get("/agent/"))  # the admin is staff too


def test_admin_creates_an_establishment_and_units_with_exclusions(client, auth, db):
    auth.login("admin@tilleuls.test")
    empty = page_text(client.submit("/admin/etablissements/nouveau", {"name": "", "kind": "loisirs", "email": "pas-une-adresse"}))
    assert "Ce champ est obligatoire." in empty and "Adresse mail invalide" in empty
    response = client.submit("/admin/etablissements/nouveau",
                             {"name": "Accueil de loisirs Les Pinsons", "kind": "loisirs", "address": "3 rue des Pins",
                              "phone": "01 02 03 04 05", "email": "pinsons@tilleuls.test"})
    est = db.exec(select(Establishment).where(Establishment.name == "Accueil de loisirs Les Pinsons")).one()
    assert response.headers["Location"].endswith(f"/admin/etablissements/{est.id}")
    new_unit = f"/admin/etablissements/{est.id}/unites/nouvelle"
    for label, position, capacity in (("Matinée", "1", "12"), ("Après-midi", "3", "12")):
        client.submit(new_unit, {"label": label, "position": position, "capacity": capacity})
    units = {u.label: u for u in db.exec(select(Unit).where(Unit.establishment_id == est.id))}
    assert units["Matinée"].code == "matinee" and units["Après-midi"].code == "apres-midi"
    bad = page_text(client.submit(new_unit, {"label": "Journée", "position": "2", "capacity": "-3",
                                             "exclut": [str(units["Matinée"].id)]}))
    assert "La capacité est un nombre positif ou nul." in bad and 'value="Journée"' in bad
    assert f'value="{units["Matinée"].id}" id="exclut-{units["Matinée"].id}" checked' in bad  # kept
    client.submit(new_unit, {"label": "Journée", "position": "2", "capacity": "8",
                             "exclut": [str(units["Matinée"].id), str(units["Après-midi"].id)]})
    journee = db.exec(select(Unit).where(Unit.establishment_id == est.id, Unit.label == "Journée")).one()
    excluded = {e.excluded_unit_id for e in db.exec(select(UnitExclusion).where(UnitExclusion.unit_id == journee.id))}
    assert excluded == {units["Matinée"].id, units["Après-midi"].id}
    page = page_text(client.get(f"/admin/etablissements/{est.id}"))
    assert "Journée" in page and "Matinée, Après-midi" in page
    # a unit of another establishment cannot be excluded through a forged form
    other = db.exec(select(Unit).where(Unit.establishment_id != est.id)).first()
    forged = client.submit(f"/admin/unites/{journee.id}", {"label": "Journée", "position": "2", "capacity": "8",
                                                          "exclut": [str(other.id)]})
    assert forged.status_code == 404


def test_every_change_is_recorded_with_before_and_after(client, auth, db):
    auth.login("admin@tilleuls.test")
    est = db.exec(select(Establishment)).first()
    client.submit(f"/admin/etablissements/{est.id}", {"name": est.name, "kind": est.kind, "address": "Nouvelle adresse",
                                                       "phone": est.phone, "email": est.email})
    entry = db.exec(select(AuditEntry).where(AuditEntry.target == "establishment")).one()
    assert entry.before["address"] != "Nouvelle adresse" and entry.after["address"] == "Nouvelle adresse"
    assert "Établissement modifié" in entry.summary
    page = page_text(client.get("/admin/"))
    assert "Luc Girard" in page and "Établissement modifié" in page
    unchanged = client.submit(f"/admin/etablissements/{est.id}", {"name": est.name, "kind": est.kind,
                                                                   "address": "Nouvelle adresse", "phone": est.phone,
                                                                   "email": est.email}, follow_redirects=True)
    assert "Aucune modification" in page_text(unchanged)
    assert len(db.exec(select(AuditEntry)).all()) == 1


def test_enrollments_open_and_close_booking(client, auth, db):
    noe = db.exec(select(Child).where(Child.first_name == "Noé")).one()
    ferry = db.exec(select(Establishment).where(Establishment.name == "Périscolaire école Prévert")).one()
    period = db.exec(select(Period).where(Period.establishment_id == ferry.id)).one()
    auth.login()
    assert client.get(f"/reservations/planning/{noe.id}/{period.id}").status_code == 404  # not enrolled
    auth.logout()
    auth.login("admin@tilleuls.test")
    url = f"/admin/etablissements/{ferry.id}/inscriptions"
    assert "Zoé" in page_text(client.get(url)) and "Inscrire toute une classe" in page_text(client.get(url))
    client.submit(url, {"action": "inscrire", "enfant": noe.id})
    auth.logout()
    auth.login()
    assert client.get(f"/reservations/planning/{noe.id}/{period.id}").status_code == 200
    auth.logout()
    auth.login("admin@tilleuls.test")
    client.submit(url, {"action": "retirer", "enfant": noe.id})
    done = page_text(client.submit(url, {"action": "classe", "classe": "École Prévert|CE2"}, follow_redirects=True))
    assert "0 enfant inscrit" in done and "2 déjà inscrits" in done  # Zoé and Rayan, CE2, are enrolled already
    entries = db.exec(select(AuditEntry).where(AuditEntry.target == "enrollment")).all()
    assert [e.summary.split(" :")[0] for e in entries] == ["Inscription", "Inscription retirée"]
    assert all(e.family_id == noe.family_id for e in entries)
    auth.logout()
    auth.login("agent@tilleuls.test")
    assert client.get(url).status_code == 403


def test_staff_search_a_family_and_see_it_on_one_page(client, auth, db):
    reservation_with_a_request(db)
    billed_month(db)
    auth.login("agent@tilleuls.test")
    found = page_text(client.get("/agent/familles?q=rayan"))
    assert "1 famille pour « rayan »" in found and "Haddad" in found and "Durand" not in found
    by_login = page_text(client.get("/agent/familles?q=parent2@tilleuls"))
    assert "Durand" in by_login
    assert "0 famille" in page_text(client.get("/agent/familles?q=" + "x" * 5000))  # long input: a clear answer
    durand = db.exec(select(Family).where(Family.name == "Durand")).one()
    page = page_text(client.get(f"/agent/familles/{durand.id}"))
    for words in ("Famille Durand", "Zoé Durand", "Arachide", "zoe.parent@tilleuls.test", "zoe.parent2@tilleuls.test", "R-", "F-",
                  "Chèque", "Réservations", "Factures et paiements"):
        assert words in page, words
    assert client.get("/agent/familles/99999").status_code == 404
    auth.logout()
    auth.login()
    assert client.get("/agent/familles").status_code == 403
    assert client.get(f"/agent/familles/{durand.id}").status_code == 403


def test_csv_exports_for_staff_only(client, auth, db):
    period = reservation_with_a_request(db).period_id
    zoe = child(db, "Zoé")
    zoe.allergies = "=HYPERLINK(\"http://evil\")"  # typed by a parent: must not run in a spreadsheet
    zoe.medical_notes = "Asthme léger"
    db.add(zoe)
    db.commit()
    urls = ["/agent/exports/familles.csv", "/agent/exports/enfants.csv", f"/agent/periodes/{period}/reservations.csv"]
    auth.login("zoe.parent@tilleuls.test")
    for url in urls:
        assert client.get(url).status_code == 403
    auth.logout()
    auth.login("agent@tilleuls.test")
    families = client.get(urls[0])
    assert families.mimetype == "text/csv" and "attachment" in families.headers["Content-Disposition"]
    text = families.get_data(as_text=True)
    assert text.startswith("\ufeffN° famille;Famille;") and "Durand" in text and "zoe.parent@tilleuls.test" in text
    assert "Zoé, Noé" in text or "Noé, Zoé" in text
    children = client.get(urls[1]).get_data(as_text=True)
    row = next(line for line in children.splitlines() if line.startswith("Durand;Zoé;"))
    assert "Asthme léger" in row and "'=HYPERLINK" in row
    entry = db.exec(select(AuditEntry).where(AuditEntry.target == "children")).one()
    assert "informations médicales" in entry.summary
    bookings = client.get(urls[2]).get_data(as_text=True).splitlines()
    assert bookings[0] == "\ufeffDate;Unité;Nom;Prénom;Classe;Famille;Statut;Annulation demandée"
    assert any(";Durand;Zoé;" in line and ";Réservé;" in line for line in bookings)
    assert any(";Liste d'attente;" in line for line in bookings)
    assert client.get("/agent/periodes/999/reservations.csv").status_code == 404


def test_enrollment_lists_are_searchable_and_paginated(client, auth, db):
    family = Family(name="Nombreuse")
    db.add(family)
    db.flush()
    est = db.exec(select(Establishment)).first()
    for i in range(120):
        child = Child(family_id=family.id, first_name=f"Enfant{i:03d}", last_name="Nombreuse", birth_date=date(2018, 1, 1))
        db.add(child)
        db.flush()
        if i < 60:
            db.add(Enrollment(child_id=child.id, establishment_id=est.id))
    db.commit()
    auth.login("admin@tilleuls.test")
    url = f"/admin/etablissements/{est.id}/inscriptions"
    page = page_text(client.get(url))
    assert "50 enfants affichés sur" in page and "précisez la recherche" in page
    assert "page 1 sur 2" in page and "Page suivante" in page
    found = page_text(client.get(url + "?q=enfant119"))
    assert "Nombreuse Enfant119" in found and "Enfant118" not in found and "précisez" not in found
    second = page_text(client.get(url + "?q=nombreuse&page=2"))
    assert "(60, page 2 sur 2)" in second and "Enfant059" in second and "Enfant000" not in second


def test_families_page_links_the_exports_and_admins_open_a_file(client, auth):
    auth.login("agent@tilleuls.test")
    page = page_text(client.get("/agent/familles"))
    assert 'href="/agent/exports/familles.csv"' in page and 'href="/agent/exports/enfants.csv"' in page
    assert "Ouvrir un dossier famille" not in page
    auth.logout()
    auth.login("admin@tilleuls.test")
    assert 'href="/admin/familles/nouvelle"' in page_text(client.get("/agent/familles"))


def test_the_journal_shows_before_and_after_and_is_searchable(client, auth, db):
    auth.login("admin@tilleuls.test")
    est = db.exec(select(Establishment)).first()
    client.submit(f"/admin/etablissements/{est.id}", {"name": est.name, "kind": est.kind, "address": "Rue Neuve",
                                                       "phone": est.phone, "email": est.email})
    page = page_text(client.get("/admin/journal"))
    assert "Établissement modifié" in page and "address : Rue Neuve" in page and f"address : {est.address}" in page
    assert "1 modification." in page
    assert "0 modification" in page_text(client.get("/admin/journal?q=introuvable"))
    assert client.get("/admin/journal").headers["Cache-Control"] == "no-store"
    auth.logout()
    auth.login("agent@tilleuls.test")
    assert client.get("/admin/journal").status_code == 403
