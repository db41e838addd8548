"""The family space (guide sections 3 to 6): family file changes, login change, password change."""
import re
from datetime import timedelta

from sqlmodel import select

from models import AuthToken, ChangeRequest, Family, User
from services import billing, households
from services import family as family_service
from services.formatting import euros
from services.passwords import hash_password
from tests.conftest import Auth, Client, SMTPServer, page_text
from tests.factories import billed_month, child, csrf_from, family_change

FAMILY_FORM = {  # the Durand family's file as the fixture town has it
    "guardian1-title": "Mme", "guardian1-last_name": "Durand", "guardian1-first_name": "Anne",
    "guardian1-relationship": "Mère", "guardian1-phone_mobile": "06 00 00 00 01", "guardian1-phone_work": "",
    "guardian1-email": "zoe.parent@tilleuls.test", "guardian1-employer": "",
    "guardian2-title": "M.", "guardian2-last_name": "Durand", "guardian2-first_name": "Paul",
    "guardian2-relationship": "Père", "guardian2-phone_mobile": "06 00 00 00 02", "guardian2-phone_work": "",
    "guardian2-email": "zoe.parent2@tilleuls.test", "guardian2-employer": "",
    "address_line": "4 rue du Parc", "address_extra": "", "postcode": "00200", "city": "Fixture",
    "phone_home": "01 40 00 00 10", "qf": "620", "qf_valid_until": "", "allowance_scheme": "CAF",
    "allowance_number": "6200001", "payer_position": "1",
}


def durand(db) -> Family:
    db.expire_all()
    return db.exec(select(Family).where(Family.name == "Durand")).one()


def family_form(db, **changes):
    data = dict(FAMILY_FORM, qf_valid_until=durand(db).qf_valid_until.isoformat())
    data.update(changes)
    return data


def test_family_space_shows_the_file_and_the_guide_buttons(client, auth, db):
    invoice = billed_month(db)  # 10 € of it paid by cheque
    agent = db.exec(select(User).where(User.email == "agent@tilleuls.test")).one()
    billing.record_counter_payment(db, agent.id, invoice, 500, "cash", "")  # and 5 € in cash
    db.refresh(invoice)
    auth.login()
    page = page_text(client.get("/compte/"))
    assert "4 rue du Parc" in page and "620 €" in page
    invoices = page[page.index("<caption>Vos factures"):page.index("<caption>Vos paiements")]
    payments = page[page.index("<caption>Vos paiements"):page.index("Légende", page.index("<caption>Vos paiements"))]
    assert invoices.count(invoice.number) == 2 and euros(invoice.left_cents) in invoices  # the number, and "Voir la facture …"
    assert "Partiellement payée" in invoices
    assert payments.count("Chèque") == 1 and euros(1000) in payments and invoice.number in payments
    assert payments.count("Espèces") == 1 and euros(500) in payments
    for label in ("Modifier les Informations de la famille", "Modifier mon login", "Modifier mon mot de passe"):
        assert label in page
    assert "Les réservations" in page and "Nouvelle réservation" in page
    assert re.search(r"F-\d{4}-\d{2}-\d{5}", page) and "Partiellement payée" in page  # last month, part paid




def test_a_new_family_sees_its_space_empty_and_what_to_do_first(client, auth, app, db):
    """A file just opened by the town: one guardian, no child, nothing booked or billed yet."""
    admin = db.exec(select(User).where(User.role == "admin")).first()
    hasher = app.extensions["ribambelle.hasher"]
    guardian = {"title": "Mme", "first_name": "Inès", "last_name": "Bernard", "phone_mobile": ""}
    with app.app_context():
        _, user = family_service.open_family(db, hasher, admin.id, "Bernard", guardian, "ines@exemple.fr",
                                             "Ville de Démonstration")
    user = db.get(User, user.id)
    user.password_hash = hash_password(hasher, "un-mot-de-passe-tout-neuf")
    db.add(user)
    db.commit()
    auth.login("ines@exemple.fr", "un-mot-de-passe-tout-neuf")
    page = page_text(client.get("/compte/"))
    assert "Famille Bernard" in page and "Mme Inès Bernard</dd>" in page and "Responsable légal 2" not in page
    for empty in ("Aucun enfant enregistré pour le moment.", "Aucune réservation pour le moment.",
                  "Aucune facture pour le moment."):
        assert empty in page
    assert "Ajouter un enfant" in page and "Modification en attente" not in page

def test_family_space_lists_each_guardian_and_child_once_with_what_waits(client, auth, app, db):
    """The file is read in one statement, a row per guardian × child × pending change: each shows once."""
    durand_family = durand(db)
    parent = db.exec(select(User).where(User.email == "zoe.parent@tilleuls.test")).one()
    agent = db.exec(select(User.id).where(User.email == "agent@tilleuls.test")).one()
    with app.test_request_context():
        households.link(db, agent, child(db, "Rayan"), durand_family)  # Rayan's file is the Haddad's
    family_change(db, "Durand")
    noe = child(db, "Noé")
    family_service.request_child_change(db, parent, durand_family, noe,
                                        {**family_service.child_snapshot(noe), "school_class": "CP"})
    family_service.request_child_change(db, parent, durand_family, None,
                                        {**family_service.child_snapshot(noe), "first_name": "Lina"})
    auth.login()
    page = page_text(client.get("/compte/"))
    guardians = page[page.index("Mes informations"):page.index("Adresse")]
    assert re.findall(r"Responsable légal (\d)</dt>\s*<dd>(?:Mme|M\.) (\w+)", guardians) == [("1", "Anne"), ("2", "Paul")]
    children = page[page.index("Mes enfants"):page.index("Ajouter un enfant")]
    assert re.findall(r">(\w+) \w+</a>", children) == ["Zoé", "Rayan", "Noé", "Lina"]  # eldest first, new last
    assert children.count("Modification en attente de validation") == 1  # Noé's
    assert children.index("Modification en attente") > children.index("Noé")
    assert children.count("Nouvel enfant en attente de validation") == 1
    assert guardians.count("Modification en attente de validation") == 1  # the family's own


def test_family_change_waits_for_an_agent_then_applies(client, auth, db, smtp):
    auth.login()
    form = page_text(client.get("/compte/famille/modifier"))
    assert 'value="4 rue du Parc"' in form
    response = client.submit("/compte/famille/modifier", family_form(db, address_line="8 avenue Foch", city="Ailleurs"))
    assert response.status_code == 302
    home = page_text(client.get("/compte/"))
    assert "soumises à la validation des responsables de pôle" in home
    assert "Modification en attente de validation" in home
    assert durand(db).address_line == "4 rue du Parc"  # unchanged until validated
    # the form shows what is waiting, not the old file
    assert 'value="8 avenue Foch"' in page_text(client.get("/compte/famille/modifier"))

    auth.logout()
    auth.login("agent@tilleuls.test")
    queue = page_text(client.get("/agent/"))
    assert "Informations de la famille" in queue and "Durand" in queue
    req = db.exec(select(ChangeRequest).where(ChangeRequest.family_id == durand(db).id)).one()
    detail = page_text(client.get(f"/agent/demandes/{req.id}"))
    assert "4 rue du Parc" in detail and "8 avenue Foch" in detail and "Modifié" in detail
    client.submit(f"/agent/demandes/{req.id}", {"action": "accept", "message": "Merci, c'est noté."})

    assert durand(db).address_line == "8 avenue Foch"
    assert durand(db).city == "Ailleurs"
    for address in ("zoe.parent@tilleuls.test", "zoe.parent2@tilleuls.test"):  # both guardians with a login are told
        mail = smtp.wait_for(address)[0]
        assert "validée" in mail["Subject"]
        assert "Merci, c'est noté." in smtp.text(mail)
        assert "8 avenue Foch" in smtp.text(mail)


def test_second_change_updates_the_pending_request(client, auth, db):
    auth.login()
    client.submit("/compte/famille/modifier", family_form(db, phone_home="01 11 11 11 11"))
    client.submit("/compte/famille/modifier", family_form(db, phone_home="01 22 22 22 22"))
    pending = db.exec(select(ChangeRequest).where(ChangeRequest.status == "pending", ChangeRequest.family_id == durand(db).id)).all()
    assert len(pending) == 1
    assert pending[0].after["family"]["phone_home"] == "01 22 22 22 22"


def test_saving_the_file_unchanged_files_nothing(client, auth, db):
    auth.login()
    client.submit("/compte/famille/modifier", family_form(db))
    assert "Aucune modification à enregistrer" in page_text(client.get("/compte/"))
    assert db.exec(select(ChangeRequest).where(ChangeRequest.family_id == durand(db).id)).all() == []


def test_refusal_needs_a_message_and_leaves_the_file(client, auth, db, smtp):
    auth.login()
    client.submit("/compte/famille/modifier", family_form(db, qf="150"))
    auth.logout()
    auth.login("agent@tilleuls.test")
    req = db.exec(select(ChangeRequest).where(ChangeRequest.family_id == durand(db).id)).one()
    page = page_text(client.submit(f"/agent/demandes/{req.id}", {"action": "refuse", "message": ""}))
    assert "Pour refuser, écrivez au parent" in page
    client.submit(f"/agent/demandes/{req.id}", {"action": "refuse", "message": "Joignez l'attestation CAF."})
    assert durand(db).qf == 620
    mail = smtp.wait_for("zoe.parent@tilleuls.test")[0]
    assert "refusée" in mail["Subject"] and "Joignez l'attestation CAF." in smtp.text(mail)


def test_replayed_validation_applies_once(client, auth, db, smtp):
    auth.login()
    client.submit("/compte/famille/modifier", family_form(db, city="Ailleurs"))
    auth.logout()
    auth.login("agent@tilleuls.test")
    req = db.exec(select(ChangeRequest).where(ChangeRequest.family_id == durand(db).id)).one()
    page = client.get(f"/agent/demandes/{req.id}")
    token = csrf_from(page.get_data(as_text=True))
    for _ in range(2):
        client.post(f"/agent/demandes/{req.id}", data={"csrf_token": token, "action": "accept", "message": ""})
    assert "Cette demande a déjà été traitée." in page_text(client.get("/agent/"))
    assert len(smtp.to("zoe.parent@tilleuls.test")) == 1


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
    assert db.exec(select(ChangeRequest).where(ChangeRequest.family_id == durand(db).id)).all() == []


def test_five_megabyte_name_is_refused_and_nothing_changes(client, auth, db):
    auth.login()
    html = page_text(client.submit("/compte/famille/modifier", family_form(db, **{"guardian1-last_name": "M" * 5_000_000})))
    assert "100 caractères au maximum." in html
    assert db.exec(select(ChangeRequest).where(ChangeRequest.family_id == durand(db).id)).all() == []


def test_both_guardians_see_the_same_family(client, auth):
    auth.login("zoe.parent2@tilleuls.test")
    page = page_text(client.get("/compte/"))
    assert "Bonjour Paul" in page and "Zoé Durand" in page and "Noé Durand" in page


def test_other_family_sees_only_its_own(client, auth):
    auth.login("rayan.parent@tilleuls.test")
    page = page_text(client.get("/compte/"))
    assert "Rayan Haddad" in page and "Zoé" not in page and "4 rue du Parc" not in page


def test_staff_pages_are_forbidden_to_parents(client, auth, db):
    auth.login()
    assert client.get("/agent/").status_code == 403
    req_id = family_change(db, "Haddad").id
    token = csrf_from(client.get("/compte/").get_data(as_text=True))
    response = client.post(f"/agent/demandes/{req_id}", data={"csrf_token": token, "action": "accept"})
    assert response.status_code == 403
    db.expire_all()
    assert db.get(ChangeRequest, req_id).status == "pending"


# --- login change (guide section 5) -----------------------------------------------------------------


def test_login_change_confirmed_by_the_link(client, auth, db, smtp):
    auth.login()
    response = client.submit("/compte/login/modifier", {"email": "anne.durand@tilleuls.test", "current": "zoe-parent-tilleuls"})
    assert response.status_code == 302
    home = page_text(client.get("/compte/"))
    assert "Votre demande de changement d'adresse mail est prise en charge" in home
    assert "en attente de confirmation" in home
    # until the link is used, the login is the old one
    assert db.exec(select(User).where(User.email == "zoe.parent@tilleuls.test")).first() is not None
    notice = smtp.wait_for("zoe.parent@tilleuls.test")[0]
    assert "anne.durand@tilleuls.test" in smtp.text(notice)
    link = smtp.link(smtp.wait_for("anne.durand@tilleuls.test")[0])
    response = client.get(link.split("localhost", 1)[1])
    assert response.status_code == 302
    page = page_text(client.get("/compte/"))
    assert "Votre nouvelle adresse mail anne.durand@tilleuls.test est confirmée" in page
    assert "Mon compte famille" in page
    auth.logout()
    assert auth.login("zoe.parent@tilleuls.test").status_code == 200  # old login refused
    assert client.submit("/", {"email": "anne.durand@tilleuls.test", "password": "zoe-parent-tilleuls"}).status_code == 302


def test_login_change_needs_the_current_password(client, auth, smtp):
    auth.login()
    html = page_text(client.submit("/compte/login/modifier", {"email": "autre@tilleuls.test", "current": "pas-le-bon"}))
    assert "Mot de passe incorrect." in html and 'value="autre@tilleuls.test"' in html
    assert smtp.messages == []


def test_login_change_to_a_taken_address_is_refused(client, auth, smtp):
    auth.login()
    html = page_text(client.submit("/compte/login/modifier", {"email": "rayan.parent@tilleuls.test", "current": "zoe-parent-tilleuls"}))
    assert "déjà utilisée par un autre compte" in html
    assert smtp.messages == []


def test_login_change_link_lives_48_hours_and_then_says_so(client, auth, db, smtp):
    auth.login()
    client.submit("/compte/login/modifier", {"email": "anne.durand@tilleuls.test", "current": "zoe-parent-tilleuls"})
    token = db.exec(select(AuthToken).where(AuthToken.purpose == "email")).one()
    assert token.expires_at - token.created_at == timedelta(hours=48)
    token.expires_at = token.created_at - timedelta(seconds=1)
    db.add(token)
    db.commit()
    link = smtp.link(smtp.wait_for("anne.durand@tilleuls.test")[0])
    response = client.get(link.split("localhost", 1)[1])
    assert response.status_code == 410 and "Ce lien a expiré" in page_text(response)
    assert db.exec(select(User).where(User.email == "zoe.parent@tilleuls.test")).first() is not None


# --- password change (guide section 6) --------------------------------------------------------------


def test_password_change_ends_the_other_sessions(app, auth, client):
    other_device = app.test_client()
    Auth(Client(other_device)).login()
    assert other_device.get("/compte/famille/modifier").status_code == 200

    auth.login()
    response = client.submit(
        "/compte/mot-de-passe/modifier",
        {"current": "zoe-parent-tilleuls", "password": "ma nouvelle phrase secrète", "confirm": "ma nouvelle phrase secrète"},
    )
    assert response.status_code == 302
    assert "Votre mot de passe a été modifié." in page_text(client.get("/compte/"))
    assert client.get("/compte/famille/modifier").status_code == 200  # this session goes on
    assert other_device.get("/compte/famille/modifier").status_code == 302  # the other one ended


def test_password_change_with_a_wrong_current_password_changes_nothing(client, auth, db):
    auth.login()
    before = db.exec(select(User).where(User.email == "zoe.parent@tilleuls.test")).one().password_hash
    html = page_text(client.submit(
        "/compte/mot-de-passe/modifier",
        {"current": "faux", "password": "ma nouvelle phrase secrète", "confirm": "ma nouvelle phrase secrète"},
    ))
    assert "Mot de passe actuel incorrect." in html
    db.expire_all()
    assert db.exec(select(User).where(User.email == "zoe.parent@tilleuls.test")).one().password_hash == before


def test_weak_or_current_password_is_refused(client, auth, db):
    auth.login()
    before = db.exec(select(User).where(User.email == "zoe.parent@tilleuls.test")).one().password_hash
    for password, message in {"motdepasse123": "Ce mot de passe est trop facile à deviner.",
                              "duranddurand2027": "Il reprend votre identifiant, votre nom",
                              "zoe-parent-tilleuls": "C'est votre mot de passe actuel"}.items():
        html = page_text(client.submit(
            "/compte/mot-de-passe/modifier",
            {"current": "zoe-parent-tilleuls", "password": password, "confirm": password},
        ))
        assert message in html, password
    db.expire_all()
    assert db.exec(select(User).where(User.email == "zoe.parent@tilleuls.test")).one().password_hash == before


def test_login_confirmation_opened_in_another_browser_fills_the_login(app, client, auth, smtp):
    """The link opened on another device: confirmed, then the login page with the new login written in."""
    auth.login()
    client.submit("/compte/login/modifier", {"email": "anne.neuve@tilleuls.test", "current": "zoe-parent-tilleuls"})
    link = SMTPServer.link(smtp.wait_for("anne.neuve@tilleuls.test")[0])
    other = Client(app.test_client())
    response = other.get(link.split("localhost", 1)[1], follow_redirects=True)
    assert "Connectez-vous avec cette adresse." in page_text(response)
    assert 'value="anne.neuve@tilleuls.test"' in response.get_data(as_text=True)
