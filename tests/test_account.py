"""The family space (guide sections 3 to 6): family file changes, login change, password change."""
import re
from datetime import timedelta

from sqlmodel import select

from models import AuthToken, ChangeRequest, Family, User
from tests.conftest import page_text

FAMILY_FORM = {
    "guardian1-title": "Mme", "guardian1-last_name": "Martin", "guardian1-first_name": "Claire",
    "guardian1-relationship": "Mère", "guardian1-phone_mobile": "06 12 34 56 78", "guardian1-phone_work": "",
    "guardian1-email": "parent@demo.test", "guardian1-employer": "Hôpital de Démonstration",
    "guardian2-title": "M.", "guardian2-last_name": "Martin", "guardian2-first_name": "Julien",
    "guardian2-relationship": "Père", "guardian2-phone_mobile": "06 98 76 54 32", "guardian2-phone_work": "",
    "guardian2-email": "parent2@demo.test", "guardian2-employer": "",
    "address_line": "12 rue des Lilas", "address_extra": "", "postcode": "00100", "city": "Démonstration",
    "phone_home": "01 23 45 67 89", "qf": "620", "qf_valid_until": "", "allowance_scheme": "CAF",
    "allowance_number": "1234567", "payer_position": "1",
}


def martin(db) -> Family:
    db.expire_all()
    return db.exec(select(Family).where(Family.name == "Martin")).one()


def family_form(db, **changes):
    data = dict(FAMILY_FORM, qf_valid_until=martin(db).qf_valid_until.isoformat())
    data.update(changes)
    return data


def test_family_space_shows_the_file_and_the_guide_buttons(client, auth):
    auth.login()
    page = page_text(client.get("/compte/"))
    assert "12 rue des Lilas" in page and "620 €" in page
    for label in ("Modifier les Informations de la famille", "Modifier mon login", "Modifier mon mot de passe"):
        assert label in page
    assert "Les réservations" in page and "Nouvelle réservation" in page
    assert re.search(r"F-\d{4}-\d{2}-\d{5}", page) and "Partiellement payée" in page  # the demo's last month


def test_family_change_waits_for_an_agent_then_applies(client, auth, db, smtp):
    auth.login()
    form = page_text(client.get("/compte/famille/modifier"))
    assert 'value="12 rue des Lilas"' in form
    response = client.submit("/compte/famille/modifier", family_form(db, address_line="8 avenue du Parc", city="Ailleurs"))
    assert response.status_code == 302
    home = page_text(client.get("/compte/"))
    assert "soumises à la validation des responsables de pôle" in home
    assert "Modification en attente de validation" in home
    assert martin(db).address_line == "12 rue des Lilas"  # unchanged until validated
    # the form shows what is waiting, not the old file
    assert 'value="8 avenue du Parc"' in page_text(client.get("/compte/famille/modifier"))

    auth.logout()
    auth.login("agent@demo.test")
    queue = page_text(client.get("/agent/"))
    assert "Informations de la famille" in queue and "Martin" in queue
    req = db.exec(select(ChangeRequest).where(ChangeRequest.family_id == martin(db).id)).one()
    detail = page_text(client.get(f"/agent/demandes/{req.id}"))
    assert "12 rue des Lilas" in detail and "8 avenue du Parc" in detail and "Modifié" in detail
    client.submit(f"/agent/demandes/{req.id}", {"action": "accept", "message": "Merci, c'est noté."})

    assert martin(db).address_line == "8 avenue du Parc"
    assert martin(db).city == "Ailleurs"
    for address in ("parent@demo.test", "parent2@demo.test"):  # both guardians with a login are told
        mail = smtp.wait_for(address)[0]
        assert "validée" in mail["Subject"]
        assert "Merci, c'est noté." in smtp.text(mail)
        assert "8 avenue du Parc" in smtp.text(mail)


def test_second_change_updates_the_pending_request(client, auth, db):
    auth.login()
    client.submit("/compte/famille/modifier", family_form(db, phone_home="01 11 11 11 11"))
    client.submit("/compte/famille/modifier", family_form(db, phone_home="01 22 22 22 22"))
    pending = db.exec(select(ChangeRequest).where(ChangeRequest.status == "pending", ChangeRequest.family_id == martin(db).id)).all()
    assert len(pending) == 1
    assert pending[0].after["family"]["phone_home"] == "01 22 22 22 22"


def test_saving_the_file_unchanged_files_nothing(client, auth, db):
    auth.login()
    client.submit("/compte/famille/modifier", family_form(db))
    assert "Aucune modification à enregistrer" in page_text(client.get("/compte/"))
    assert db.exec(select(ChangeRequest).where(ChangeRequest.family_id == martin(db).id)).all() == []


def test_refusal_needs_a_message_and_leaves_the_file(client, auth, db, smtp):
    auth.login()
    client.submit("/compte/famille/modifier", family_form(db, qf="150"))
    auth.logout()
    auth.login("agent@demo.test")
    req = db.exec(select(ChangeRequest).where(ChangeRequest.family_id == martin(db).id)).one()
    page = page_text(client.submit(f"/agent/demandes/{req.id}", {"action": "refuse", "message": ""}))
    assert "Pour refuser, écrivez au parent" in page
    client.submit(f"/agent/demandes/{req.id}", {"action": "refuse", "message": "Joignez l'attestation CAF."})
    assert martin(db).qf == 620
    mail = smtp.wait_for("parent@demo.test")[0]
    assert "refusée" in mail["Subject"] and "Joignez l'attestation CAF." in smtp.text(mail)


def test_replayed_validation_applies_once(client, auth, db, smtp):
    auth.login()
    client.submit("/compte/famille/modifier", family_form(db, city="Ailleurs"))
    auth.logout()
    auth.login("agent@demo.test")
    req = db.exec(select(ChangeRequest).where(ChangeRequest.family_id == martin(db).id)).one()
    page = client.get(f"/agent/demandes/{req.id}")
    from tests.conftest import csrf_from

    token = csrf_from(page.get_data(as_text=True))
    for _ in range(2):
        client.post(f"/agent/demandes/{req.id}", data={"csrf_token": token, "action": "accept", "message": ""})
    assert "Cette demande a déjà été traitée." in page_text(client.get("/agent/"))
    assert len(smtp.to("parent@demo.test")) == 1


def test_family_form_errors_are_in_french_and_keep_what_was_typed(client, auth, db):
    auth.login()
    data = family_form(db, postcode="123", address_line="", qf="beaucoup", **{"guardian1-last_name": "", "guardian2-phone_mobile": "appelez-moi"})
    data["city"] = "Ville très lointaine"
    html = page_text(client.submit("/compte/famille/modifier", data))
    assert "Le formulaire n'a pas été enregistré." in html
    assert "Le code postal compte 5 chiffres." in html
    assert "Ce champ est obligatoire." in html
    assert "Numéro de téléphone invalide" in html
    assert 'value="Ville très lointaine"' in html and 'value="appelez-moi"' in html
    assert db.exec(select(ChangeRequest).where(ChangeRequest.family_id == martin(db).id)).all() == []


def test_five_megabyte_name_is_refused_and_nothing_changes(client, auth, db):
    auth.login()
    html = page_text(client.submit("/compte/famille/modifier", family_form(db, **{"guardian1-last_name": "M" * 5_000_000})))
    assert "100 caractères au maximum." in html
    assert db.exec(select(ChangeRequest).where(ChangeRequest.family_id == martin(db).id)).all() == []


def test_both_guardians_see_the_same_family(client, auth):
    auth.login("parent2@demo.test")
    page = page_text(client.get("/compte/"))
    assert "Bonjour Julien" in page and "Léa Martin" in page and "Hugo Martin" in page


def test_other_family_sees_only_its_own(client, auth):
    auth.login("famille2@demo.test")
    page = page_text(client.get("/compte/"))
    assert "Yanis Benali" in page and "Léa" not in page and "12 rue des Lilas" not in page


def test_staff_pages_are_forbidden_to_parents(client, auth, db):
    auth.login()
    assert client.get("/agent/").status_code == 403
    req_id = db.exec(select(ChangeRequest)).first().id  # the demo's pending Benali change
    from tests.conftest import csrf_from

    token = csrf_from(client.get("/compte/").get_data(as_text=True))
    response = client.post(f"/agent/demandes/{req_id}", data={"csrf_token": token, "action": "accept"})
    assert response.status_code == 403
    db.expire_all()
    assert db.get(ChangeRequest, req_id).status == "pending"


# --- login change (guide section 5) -----------------------------------------------------------------


def test_login_change_confirmed_by_the_link(client, auth, db, smtp):
    auth.login()
    response = client.submit("/compte/login/modifier", {"email": "claire.martin@demo.test", "current": "parent-demo-ribambelle"})
    assert response.status_code == 302
    home = page_text(client.get("/compte/"))
    assert "Votre demande de changement d'adresse mail est prise en charge" in home
    assert "en attente de confirmation" in home
    # until the link is used, the login is the old one
    assert db.exec(select(User).where(User.email == "parent@demo.test")).first() is not None
    notice = smtp.wait_for("parent@demo.test")[0]
    assert "claire.martin@demo.test" in smtp.text(notice)
    link = smtp.link(smtp.wait_for("claire.martin@demo.test")[0])
    response = client.get(link.split("localhost", 1)[1])
    assert response.status_code == 302
    page = page_text(client.get("/compte/"))
    assert "Votre nouvelle adresse mail claire.martin@demo.test est confirmée" in page
    assert "Mon compte famille" in page
    auth.logout()
    assert auth.login("parent@demo.test").status_code == 200  # old login refused
    assert client.submit("/", {"email": "claire.martin@demo.test", "password": "parent-demo-ribambelle"}).status_code == 302


def test_login_change_needs_the_current_password(client, auth, smtp):
    auth.login()
    html = page_text(client.submit("/compte/login/modifier", {"email": "autre@demo.test", "current": "pas-le-bon"}))
    assert "Mot de passe incorrect." in html and 'value="autre@demo.test"' in html
    assert smtp.messages == []


def test_login_change_to_a_taken_address_is_refused(client, auth, smtp):
    auth.login()
    html = page_text(client.submit("/compte/login/modifier", {"email": "famille2@demo.test", "current": "parent-demo-ribambelle"}))
    assert "déjà utilisée par un autre compte" in html
    assert smtp.messages == []


def test_login_change_link_lives_48_hours_and_then_says_so(client, auth, db, smtp):
    auth.login()
    client.submit("/compte/login/modifier", {"email": "claire.martin@demo.test", "current": "parent-demo-ribambelle"})
    token = db.exec(select(AuthToken).where(AuthToken.purpose == "email")).one()
    assert token.expires_at - token.created_at == timedelta(hours=48)
    token.expires_at = token.created_at - timedelta(seconds=1)
    db.add(token)
    db.commit()
    link = smtp.link(smtp.wait_for("claire.martin@demo.test")[0])
    response = client.get(link.split("localhost", 1)[1])
    assert response.status_code == 410 and "Ce lien a expiré" in page_text(response)
    assert db.exec(select(User).where(User.email == "parent@demo.test")).first() is not None


# --- password change (guide section 6) --------------------------------------------------------------


def test_password_change_ends_the_other_sessions(app, auth, client):
    other_device = app.test_client()
    from tests.conftest import Auth, Client

    Auth(Client(other_device)).login()
    assert other_device.get("/compte/famille/modifier").status_code == 200

    auth.login()
    response = client.submit(
        "/compte/mot-de-passe/modifier",
        {"current": "parent-demo-ribambelle", "password": "ma nouvelle phrase secrète", "confirm": "ma nouvelle phrase secrète"},
    )
    assert response.status_code == 302
    assert "Votre mot de passe a été modifié." in page_text(client.get("/compte/"))
    assert client.get("/compte/famille/modifier").status_code == 200  # this session goes on
    assert other_device.get("/compte/famille/modifier").status_code == 302  # the other one ended


def test_password_change_with_a_wrong_current_password_changes_nothing(client, auth, db):
    auth.login()
    before = db.exec(select(User).where(User.email == "parent@demo.test")).one().password_hash
    html = page_text(client.submit(
        "/compte/mot-de-passe/modifier",
        {"current": "faux", "password": "ma nouvelle phrase secrète", "confirm": "ma nouvelle phrase secrète"},
    ))
    assert "Mot de passe actuel incorrect." in html
    db.expire_all()
    assert db.exec(select(User).where(User.email == "parent@demo.test")).one().password_hash == before


def test_weak_or_current_password_is_refused(client, auth, db):
    auth.login()
    before = db.exec(select(User).where(User.email == "parent@demo.test")).one().password_hash
    for password, message in {"motdepasse123": "Ce mot de passe est trop facile à deviner.",
                              "martinmartin2027": "Il reprend votre identifiant, votre nom",
                              "parent-demo-ribambelle": "C'est votre mot de passe actuel"}.items():
        html = page_text(client.submit(
            "/compte/mot-de-passe/modifier",
            {"current": "parent-demo-ribambelle", "password": password, "confirm": password},
        ))
        assert message in html, password
    db.expire_all()
    assert db.exec(select(User).where(User.email == "parent@demo.test")).one().password_hash == before


def test_login_confirmation_opened_in_another_browser_fills_the_login(app, client, auth, smtp):
    """The link opened on another device: confirmed, then the login page with the new login written in."""
    from tests.conftest import Client, SMTPServer

    auth.login()
    client.submit("/compte/login/modifier", {"email": "claire.neuve@demo.test", "current": "parent-demo-ribambelle"})
    link = SMTPServer.link(smtp.wait_for("claire.neuve@demo.test")[0])
    other = Client(app.test_client())
    response = other.get(link.split("localhost", 1)[1], follow_redirects=True)
    assert "Connectez-vous avec cette adresse." in page_text(response)
    assert 'value="claire.neuve@demo.test"' in response.get_data(as_text=True)
