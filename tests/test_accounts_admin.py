"""Accounts and prices managed by an admin (issue 6): staff accounts with a role, new families with their
first parent account (a mail to choose the password), deactivation, QF brackets and unit prices."""
from datetime import timedelta

from sqlmodel import select

from models import AuditEntry, AuthToken, Family, Guardian, Price, QfBracket, Unit, User
from tests.conftest import Client, page_text

PASSWORD = "une phrase de passe pour le service"
ADMIN_ONLY = ["/admin/comptes", "/admin/comptes/nouveau", "/admin/familles/nouvelle", "/admin/tranches"]


def choose_password(client, smtp, address):
    link = smtp.link(smtp.wait_for(address)[0])
    path = link.split("localhost", 1)[1]
    page = page_text(client.get(path))
    assert "Choisir votre mot de passe" in page and address in page
    chosen = client.submit(path, {"password": PASSWORD, "confirm": PASSWORD})
    assert chosen.status_code == 302
    login = client.get("/")  # not logged in by the link: the login page, the login filled in
    assert f'value="{address}"' in login.get_data(as_text=True)
    return client.submit("/", {"email": address, "password": PASSWORD})


def test_only_admins_manage_accounts_and_prices(client, auth):
    for email in ("zoe.parent@tilleuls.test", "agent@tilleuls.test"):
        auth.login(email)
        for path in ADMIN_ONLY:
            assert client.get(path).status_code == 403, (email, path)
            if path != "/admin/comptes":  # a page to read only
                assert client.submit("/", {"email": "x@tilleuls.test"}, action=path).status_code == 403, (email, path)
        for path in ("/admin/comptes/1/activation", "/admin/comptes/1/invitation"):
            assert client.submit("/", {"actif": "0"}, action=path).status_code == 403, (email, path)
        auth.logout()
    auth.login("admin@tilleuls.test")
    for path in ADMIN_ONLY:
        response = client.get(path)
        assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"


def test_admin_creates_an_agent_who_chooses_a_password_and_logs_in(app, client, auth, db, smtp):
    auth.login("admin@tilleuls.test")
    empty = client.submit("/admin/comptes/nouveau", {"email": "pas-une-adresse", "first_name": "", "role": "agent"})
    assert empty.status_code == 422
    page = page_text(empty)
    assert "Adresse mail invalide" in page and "Ce champ est obligatoire." in page and 'value="pas-une-adresse"' in page
    taken = page_text(client.submit("/admin/comptes/nouveau", {"email": "Agent@Tilleuls.test", "first_name": "A",
                                                               "last_name": "B", "role": "agent"}))
    assert "Un compte utilise déjà cette adresse." in taken
    forged = client.submit("/admin/comptes/nouveau", {"email": "x@tilleuls.test", "first_name": "A", "last_name": "B",
                                                      "role": "superuser"})
    assert forged.status_code == 422 and db.exec(select(User).where(User.email == "x@tilleuls.test")).first() is None
    done = client.submit("/admin/comptes/nouveau", {"email": "Nadia.Roux@tilleuls.test", "first_name": "Nadia",
                                                    "last_name": "Roux", "role": "agent"}, follow_redirects=True)
    assert "Le compte de Nadia Roux est créé" in page_text(done)
    assert "nadia.roux@tilleuls.test" in page_text(done) and "jamais connecté" in page_text(done)
    user = db.exec(select(User).where(User.email == "nadia.roux@tilleuls.test")).one()
    assert user.role == "agent" and user.family_id is None
    token = db.exec(select(AuthToken).where(AuthToken.user_id == user.id)).one()
    assert token.purpose == "invite" and timedelta(days=6) < token.expires_at - token.created_at <= timedelta(days=7)
    mail = smtp.wait_for("nadia.roux@tilleuls.test")[0]
    assert "Un compte agent a été créé pour vous" in smtp.text(mail) and "valable 7 jours" in smtp.text(mail)

    agent = Client(app.test_client())
    assert choose_password(agent, smtp, "nadia.roux@tilleuls.test").status_code == 302
    assert "Dossiers à valider" in page_text(agent.get("/agent/", follow_redirects=True))
    assert agent.get("/admin/").status_code == 403
    entry = db.exec(select(AuditEntry).where(AuditEntry.target == "user", AuditEntry.target_id == user.id)).one()
    assert entry.after == {"email": "nadia.roux@tilleuls.test", "role": "agent"}


def test_admin_opens_a_family_whose_parent_then_books_nothing_yet_but_logs_in(app, client, auth, db, smtp):
    auth.login("admin@tilleuls.test")
    bad = client.submit("/admin/familles/nouvelle", {"name": "", "last_name": "Petit", "first_name": "Julie",
                                                      "phone_mobile": "abc", "email": "julie.petit@tilleuls.test"})
    assert bad.status_code == 422
    page = page_text(bad)
    assert "Numéro de téléphone invalide" in page and 'value="Petit"' in page and 'value="julie.petit@tilleuls.test"' in page
    assert db.exec(select(Family).where(Family.name == "Petit")).first() is None
    done = client.submit("/admin/familles/nouvelle", {"name": "Petit", "title": "Mme", "last_name": "Petit",
                                                       "first_name": "Julie", "phone_mobile": "06 11 22 33 44",
                                                       "email": "julie.petit@tilleuls.test"}, follow_redirects=True)
    page = page_text(done)
    assert "Famille Petit" in page and "Le dossier de la famille Petit est ouvert" in page and "Famille créée" in page
    family = db.exec(select(Family).where(Family.name == "Petit")).one()
    guardian = db.exec(select(Guardian).where(Guardian.family_id == family.id)).one()
    assert (guardian.title, guardian.first_name, guardian.phone_mobile) == ("Mme", "Julie", "06 11 22 33 44")
    user = db.exec(select(User).where(User.email == "julie.petit@tilleuls.test")).one()
    assert user.role == "parent" and user.family_id == family.id
    assert "a ouvert votre compte sur le portail famille" in smtp.text(smtp.wait_for("julie.petit@tilleuls.test")[0])
    again = client.submit("/admin/familles/nouvelle", {"name": "Petit", "last_name": "Petit", "first_name": "Julie",
                                                        "email": "julie.petit@tilleuls.test"})
    assert "Un compte utilise déjà cette adresse" in page_text(again)

    parent = Client(app.test_client())
    assert choose_password(parent, smtp, "julie.petit@tilleuls.test").status_code == 302
    home = page_text(parent.get("/compte/"))
    assert "Mon compte famille" in home and "Famille Petit" in home
    assert parent.get(f"/agent/familles/{family.id}").status_code == 403


def test_a_deactivated_account_is_logged_out_and_cannot_log_in_again(app, client, auth, db):
    parent = Client(app.test_client())
    parent.submit("/", {"email": "zoe.parent@tilleuls.test", "password": "zoe-parent-tilleuls"})
    assert "Mon compte famille" in page_text(parent.get("/compte/"))
    auth.login("admin@tilleuls.test")
    user = db.exec(select(User).where(User.email == "zoe.parent@tilleuls.test")).one()
    page = page_text(client.submit("/admin/comptes", {"actif": "0"}, action=f"/admin/comptes/{user.id}/activation",
                                   follow_redirects=True))
    assert "Le compte zoe.parent@tilleuls.test est désactivé" in page and "Désactivé" in page
    gone = parent.get("/compte/")  # the session ended with the account: sent to the login page
    assert gone.status_code == 302 and gone.headers["Location"].startswith("/?next=")
    assert "Mon compte famille" not in page_text(parent.get("/"))
    refused = parent.submit("/", {"email": "zoe.parent@tilleuls.test", "password": "zoe-parent-tilleuls"})
    assert refused.status_code == 200 and "Mon compte famille" not in page_text(refused)
    client.submit("/admin/comptes", {"actif": "1"}, action=f"/admin/comptes/{user.id}/activation")
    assert parent.submit("/", {"email": "zoe.parent@tilleuls.test", "password": "zoe-parent-tilleuls"}).status_code == 302
    entries = db.exec(select(AuditEntry).where(AuditEntry.target == "user", AuditEntry.target_id == user.id)).all()
    assert [e.summary.split(" :")[0] for e in entries] == ["Compte désactivé", "Compte réactivé"]
    assert all(e.family_id == user.family_id for e in entries)
    admin = db.exec(select(User).where(User.email == "admin@tilleuls.test")).one()
    own = page_text(client.submit("/admin/comptes", {"actif": "0"}, action=f"/admin/comptes/{admin.id}/activation",
                                  follow_redirects=True))
    assert "Vous ne pouvez pas désactiver votre propre compte." in own
    assert client.submit("/admin/comptes", {"actif": "0"}, action="/admin/comptes/9999/activation").status_code == 404


def test_accounts_are_searchable_by_role_and_paginated(client, auth, db):
    for i in range(25):
        db.add(User(email=f"agent{i:02d}@tilleuls.test", role="agent", first_name="Agent", last_name=f"N{i}",
                    password_hash="x"))
    db.commit()
    auth.login("admin@tilleuls.test")
    first = page_text(client.get("/admin/comptes?role=agent"))
    assert "26 comptes" in first and "page 1 sur 2" in first and "Page suivante" in first
    assert "zoe.parent@tilleuls.test" not in first
    second = page_text(client.get("/admin/comptes?role=agent&page=2"))
    assert "page 2 sur 2" in second and "Page précédente" in second
    found = page_text(client.get("/admin/comptes?q=HADDAD"))
    assert "rayan.parent@tilleuls.test" in found and "1 compte pour" in found
    assert "0 compte" in page_text(client.get("/admin/comptes?q=" + "z" * 500))


def test_brackets_and_unit_prices(client, auth, db):
    auth.login("admin@tilleuls.test")
    bad = client.submit("/admin/tranches", {"plafond": ["800", "450", ""]})
    assert bad.status_code == 422
    page = page_text(bad)
    assert "Les plafonds doivent aller en croissant" in page and 'value="800"' in page
    assert "nombre entier" in page_text(client.submit("/admin/tranches", {"plafond": ["450", "huit cents"]}))
    assert len(db.exec(select(QfBracket)).all()) == 3  # unchanged
    client.submit("/admin/tranches", {"plafond": ["500", "", "1000"]})
    brackets = [(b.qf_min, b.qf_max) for b in db.exec(select(QfBracket).order_by(QfBracket.qf_min))]
    assert brackets == [(0, 500), (501, 1000), (1001, None)]

    unit = db.exec(select(Unit).where(Unit.code == "matinee")).one()
    url = f"/admin/unites/{unit.id}"
    form = page_text(client.get(url))
    assert "QF de 0 à 500 €" in form and "QF à partir de 1001 €" in form
    ids = [b.id for b in db.exec(select(QfBracket).order_by(QfBracket.qf_min))]
    data = {"label": unit.label, "position": str(unit.position), "capacity": str(unit.capacity)}
    wrong = client.submit(url, {**data, f"tarif-{ids[0]}": "3,5x", f"tarif-{ids[1]}": "4,50"})
    page = page_text(wrong)
    assert "Montant invalide : en euros, par exemple 3,50." in page and 'value="3,5x"' in page and 'value="4,50"' in page
    client.submit(url, {**data, f"tarif-{ids[0]}": "3,50", f"tarif-{ids[1]}": "4,5 €", f"tarif-{ids[2]}": "12"})
    prices = {(p.qf_min, p.qf_max): p.amount_cents for p in db.exec(select(Price).where(Price.unit_id == unit.id,
                                                                                         Price.period_id.is_(None)))}
    assert prices == {(0, 500): 350, (501, 1000): 450, (1001, None): 1200}
    assert 'value="4,50"' in page_text(client.get(url))
    entry = db.exec(select(AuditEntry).where(AuditEntry.target == "unit")).one()
    assert entry.after["tarifs"] == {"QF de 0 à 500 €": 350, "QF de 501 à 1000 €": 450, "QF à partir de 1001 €": 1200}


def test_form_messages_are_french_even_for_a_forged_choice(client, auth):
    auth.login("admin@tilleuls.test")
    page = page_text(client.submit("/admin/comptes/nouveau", {"email": "x@tilleuls.test", "first_name": "A",
                                                              "last_name": "B", "role": "superuser"}))
    assert "N'est pas un choix valide." in page and "Not a valid" not in page
    page = page_text(client.submit("/admin/etablissements/1/periodes/nouvelle", {"name": "P", "start_date": "2027-13-45",
                                                                              "auto_accept_days": "huit"}))
    assert "N'est pas une date valide." in page and "N'est pas un entier valide." in page
