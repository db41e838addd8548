"""Block "Mes enfants": add, view, modify; validation by an agent; another family's child is out of reach."""
from datetime import date

from sqlmodel import select

from models import ChangeRequest, Child
from tests.conftest import csrf_from, page_text

NEW_CHILD = {
    "last_name": "Durand", "first_name": "Lina", "birth_date": "2021-03-14", "sex": "F",
    "school": "École maternelle Les Petits Pas", "school_class": "MS", "allergies": "Kiwi",
    "has_pai": "y", "pai_details": "Antihistaminique dans le sac", "medical_notes": "",
    "doctor_name": "Dr Bernard", "doctor_phone": "01 98 76 54 32",
    "pickup_persons": "Monique Durand, grand-mère, 06 55 44 33 22\nPaul Durand, voisin, 06 00 00 00 01",
    "image_rights": "y",
}


def child_named(db, first_name):
    db.expire_all()
    return db.exec(select(Child).where(Child.first_name == first_name)).first()


def test_new_child_waits_for_validation_then_exists(client, auth, db, smtp):
    auth.login()
    response = client.submit("/enfants/ajouter", NEW_CHILD)
    assert response.status_code == 302
    home = page_text(client.get("/compte/"))
    assert "La fiche de Lina est enregistrée" in home
    assert "Nouvel enfant en attente de validation" in home
    assert child_named(db, "Lina") is None

    auth.logout()
    auth.login("agent@tilleuls.test")
    req = db.exec(select(ChangeRequest).where(ChangeRequest.target == "child")).one()
    assert "Nouvel enfant : Lina Durand" in page_text(client.get("/agent/"))
    client.submit(f"/agent/demandes/{req.id}", {"action": "accept", "message": ""})

    lina = child_named(db, "Lina")
    assert lina.birth_date == date(2021, 3, 14)
    assert lina.has_pai and lina.image_rights and lina.allergies == "Kiwi"
    assert "Paul Durand" in lina.pickup_persons
    assert "Lina" in smtp.text(smtp.wait_for("zoe.parent@tilleuls.test")[0])

    auth.logout()
    auth.login("zoe.parent2@tilleuls.test")  # the other guardian sees the new child too
    assert "Lina Durand" in page_text(client.get("/compte/"))


def test_child_change_waits_and_the_file_shows_the_old_values(client, auth, db):
    auth.login()
    zoe = child_named(db, "Zoé")
    page = page_text(client.get(f"/enfants/{zoe.id}"))
    assert "Arachide" in page and "Droit à l'image" in page
    form = page_text(client.get(f"/enfants/{zoe.id}/modifier"))
    assert 'value="CE2"' in form
    data = {
        "last_name": "Durand", "first_name": "Zoé", "birth_date": zoe.birth_date.isoformat(), "sex": "F",
        "school": "École Prévert", "school_class": "CM1", "allergies": "Arachide, noix",
        "has_pai": "y", "pai_details": zoe.pai_details, "medical_notes": "", "doctor_name": zoe.doctor_name,
        "doctor_phone": zoe.doctor_phone, "pickup_persons": zoe.pickup_persons, "image_rights": "y",
    }
    client.submit(f"/enfants/{zoe.id}/modifier", data)
    page = page_text(client.get(f"/enfants/{zoe.id}"))
    assert "Modification en attente de validation" in page
    assert child_named(db, "Zoé").school_class == "CE2"
    req = db.exec(select(ChangeRequest).where(ChangeRequest.child_id == zoe.id)).one()
    assert req.after["school_class"] == "CM1" and req.before["school_class"] == "CE2"


def test_another_familys_child_is_not_found_and_nothing_changes(client, auth, db):
    rayan = child_named(db, "Rayan")
    auth.login()  # Durand family
    assert client.get(f"/enfants/{rayan.id}").status_code == 404
    assert client.get(f"/enfants/{rayan.id}/modifier").status_code == 404
    token = csrf_from(client.get("/enfants/ajouter").get_data(as_text=True))
    forged = dict(NEW_CHILD, first_name="Pirate", csrf_token=token)
    assert client.post(f"/enfants/{rayan.id}/modifier", data=forged).status_code == 404
    assert db.exec(select(ChangeRequest).where(ChangeRequest.target == "child")).all() == []
    assert child_named(db, "Rayan").first_name == "Rayan"


def test_another_familys_pending_child_is_not_found(client, auth, db):
    auth.login("rayan.parent@tilleuls.test")
    client.submit("/enfants/ajouter", dict(NEW_CHILD, last_name="Haddad", first_name="Inès"))
    req = db.exec(select(ChangeRequest).where(ChangeRequest.target == "child")).one()
    assert client.get(f"/enfants/demande/{req.id}").status_code == 200
    auth.logout()
    auth.login()
    assert client.get(f"/enfants/demande/{req.id}").status_code == 404


def test_child_form_errors_keep_what_was_typed(client, auth, db):
    auth.login()
    bad = dict(NEW_CHILD, first_name="", birth_date="2099-01-01", doctor_phone="docteur", school="École des Tilleuls")
    html = page_text(client.submit("/enfants/ajouter", bad))
    assert "Ce champ est obligatoire." in html
    assert "Date de naissance invalide." in html
    assert "Numéro de téléphone invalide" in html
    assert 'value="École des Tilleuls"' in html and "Paul Durand" in html
    assert db.exec(select(ChangeRequest).where(ChangeRequest.target == "child")).all() == []


def test_malformed_date_is_explained(client, auth):
    auth.login()
    html = page_text(client.submit("/enfants/ajouter", dict(NEW_CHILD, birth_date="14/03/2021x")))
    assert "Le formulaire n'a pas été enregistré." in html
    assert "date" in html.lower()


def test_staff_have_no_family_space(client, auth):
    auth.login("agent@tilleuls.test")
    assert client.get("/enfants/ajouter").status_code == 403
