"""Forgotten login or password (guide section 2): same answer for any address, single-use link."""
from datetime import timedelta

from sqlmodel import select

from models import AuthToken, User
from tests.conftest import page_text


def ask(client, address):
    return client.submit("/identifiant-oublie", {"email": address})


def test_confirmation_reads_the_same_whether_or_not_the_address_exists(client, smtp):
    known = ask(client, "parent@demo.test").get_data(as_text=True)
    unknown = ask(client, "personne@demo.test").get_data(as_text=True)
    assert "Si cette adresse correspond à un compte" in known
    assert ">OK</a>" in known
    strip = lambda html: html.split('name="csrf_token"')[0].split("X-CSRFToken")[0]
    assert strip(known) == strip(unknown)
    assert len(smtp.to("parent@demo.test")) == 1
    assert smtp.to("personne@demo.test") == []


def test_mail_gives_the_login_and_a_link_never_a_password(client, smtp):
    ask(client, "parent@demo.test")
    mail = smtp.wait_for("parent@demo.test")[0]
    text = smtp.text(mail)
    assert "Votre identifiant de connexion : parent@demo.test" in text
    assert "30 minutes" in text
    assert "parent-demo-ribambelle" not in text
    assert "/mot-de-passe/nouveau/" in smtp.link(mail)


def test_link_sets_a_new_password_once(client, smtp, db):
    ask(client, "parent@demo.test")
    link = smtp.link(smtp.wait_for("parent@demo.test")[0])
    path = link.split("localhost", 1)[1]
    page = client.get(path).get_data(as_text=True)
    assert "Choisir un nouveau mot de passe" in page and "parent@demo.test" in page

    response = client.submit(path, {"password": "une phrase de passe toute neuve", "confirm": "une phrase de passe toute neuve"})
    assert response.status_code == 302
    assert "Votre nouveau mot de passe est enregistré" in client.get("/").get_data(as_text=True)

    client.submit("/", {}, action="/deconnexion")
    assert client.submit("/", {"email": "parent@demo.test", "password": "parent-demo-ribambelle"}).status_code == 200
    assert client.submit("/", {"email": "parent@demo.test", "password": "une phrase de passe toute neuve"}).status_code == 302

    again = client.get(path)
    assert again.status_code == 410
    assert "Ce lien a déjà été utilisé" in again.get_data(as_text=True)


def test_expired_link_says_so(client, smtp, db):
    ask(client, "parent@demo.test")
    path = smtp.link(smtp.wait_for("parent@demo.test")[0]).split("localhost", 1)[1]
    token = db.exec(select(AuthToken)).one()
    token.expires_at = token.created_at - timedelta(seconds=1)
    db.add(token)
    db.commit()
    response = client.get(path)
    assert response.status_code == 410
    assert "Ce lien a expiré" in response.get_data(as_text=True)


def test_link_lives_thirty_minutes(client, smtp, db):
    ask(client, "parent@demo.test")
    token = db.exec(select(AuthToken)).one()
    assert token.expires_at - token.created_at == timedelta(minutes=30)


def test_a_newer_request_supersedes_the_older_link(client, smtp):
    ask(client, "parent@demo.test")
    ask(client, "parent@demo.test")
    first, second = smtp.wait_for("parent@demo.test", count=2)
    old = client.get(smtp.link(first).split("localhost", 1)[1])
    assert old.status_code == 410
    assert "remplacé par un lien plus récent" in old.get_data(as_text=True)
    assert client.get(smtp.link(second).split("localhost", 1)[1]).status_code == 200


def test_unknown_link_says_so(client):
    response = client.get("/mot-de-passe/nouveau/nimporte-quoi")
    assert response.status_code == 404
    assert "Ce lien n'est pas valide" in page_text(response)


def test_new_password_rules_are_explained_and_nothing_changes(client, smtp, db):
    ask(client, "parent@demo.test")
    path = smtp.link(smtp.wait_for("parent@demo.test")[0]).split("localhost", 1)[1]
    before = db.exec(select(User).where(User.email == "parent@demo.test")).one().password_hash
    cases = {
        "court": "au moins 12 caractères",
        "azertyuiop123": "trop courant",
        "x" * 129: "au plus 128 caractères",
    }
    for password, message in cases.items():
        html = client.submit(path, {"password": password, "confirm": password}).get_data(as_text=True)
        assert message in html
    html = client.submit(path, {"password": "une phrase assez longue", "confirm": "une autre phrase"}).get_data(as_text=True)
    assert "Les deux mots de passe ne sont pas identiques." in html
    db.expire_all()
    assert db.exec(select(User).where(User.email == "parent@demo.test")).one().password_hash == before
    assert client.get(path).status_code == 200  # the link still works after a refused try


def test_invalid_address_is_explained(client):
    html = ask(client, "pas-une-adresse").get_data(as_text=True)
    assert "Adresse mail invalide" in html
    assert 'value="pas-une-adresse"' in html

