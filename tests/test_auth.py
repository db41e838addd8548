"""Logging in (guide section 1): labels, one message for every failure, delays, sessions, headers."""
import time
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from http.cookies import SimpleCookie

from sqlmodel import Session, func, select

from models import Child, LoginSession, LoginThrottle, User
from services import security
from tests.conftest import Auth, Client, csrf_from, page_text


def test_visitor_sees_the_login_form_with_the_guide_labels(client):
    html = client.get("/").get_data(as_text=True)
    assert "Identifiant (adresse mail)" in html
    assert "Mot de passe" in html
    assert ">Connexion</button>" in html
    assert "Identifiant ou Mot de passe oublié ?" in html


def test_parent_logs_in_and_sees_the_family_space(client, auth):
    response = auth.login()
    assert response.status_code == 302
    html = client.get("/compte/").get_data(as_text=True)
    assert "Mon compte famille" in html
    for block in ("Mes informations", "Mes enfants", "Accueil de loisirs / Périscolaire", "Mes factures &amp; paiements"):
        assert block in html
    assert "Zoé Durand" in html and "Noé Durand" in html
    assert "Rayan" not in html  # the other family's child


def test_login_ignores_case_and_spaces_in_the_address(client, auth):
    auth.login(email="zoe.parent@tilleuls.test")
    auth.logout()
    response = client.submit("/", {"email": "  Zoe.Parent@Tilleuls.TEST ", "password": "zoe-parent-tilleuls"})
    assert response.status_code == 302
    assert "Mon compte famille" in client.get("/compte/").get_data(as_text=True)


def test_wrong_password_and_unknown_address_get_the_same_message(client):
    wrong_password = client.submit("/", {"email": "zoe.parent@tilleuls.test", "password": "pas-le-bon-mot-de-passe"})
    unknown = client.submit("/", {"email": "personne@tilleuls.test", "password": "pas-le-bon-mot-de-passe"})
    for response in (wrong_password, unknown):
        assert response.status_code == 200
        assert "Identifiant ou mot de passe incorrect." in response.get_data(as_text=True)
    # what was typed as login is kept
    assert 'value="personne@tilleuls.test"' in unknown.get_data(as_text=True)


def test_empty_login_form_says_what_is_missing(client):
    response = client.submit("/", {"email": "", "password": ""})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.count("Ce champ est obligatoire.") == 2


def test_repeated_failures_slow_the_account_down_then_let_it_in(client, db, app):
    for _ in range(3):
        client.submit("/", {"email": "zoe.parent@tilleuls.test", "password": "mauvais-mot-de-passe"})
    # Now even the right password waits: the delay is told, not the account's existence.
    response = client.submit("/", {"email": "zoe.parent@tilleuls.test", "password": "zoe-parent-tilleuls"})
    assert "Trop de tentatives de connexion" in response.get_data(as_text=True)
    first = db.get(LoginThrottle, "zoe.parent@tilleuls.test")
    assert first.failures == 3

    # Growing: one more failure after the wait doubles the delay.
    first.blocked_until = first.blocked_until.replace(year=2000)
    db.add(first)
    db.commit()
    client.submit("/", {"email": "zoe.parent@tilleuls.test", "password": "mauvais-mot-de-passe"})
    db.expire_all()
    second = db.get(LoginThrottle, "zoe.parent@tilleuls.test")
    assert second.failures == 4
    delay = (second.blocked_until - second.last_failure_at).total_seconds()
    assert 9 <= delay <= 11  # 5 s then 10 s ...

    # Never a permanent lock-out: once the delay is over the right password works.
    second.blocked_until = second.blocked_until.replace(year=2000)
    db.add(second)
    db.commit()
    response = client.submit("/", {"email": "zoe.parent@tilleuls.test", "password": "zoe-parent-tilleuls"})
    assert response.status_code == 302
    db.expire_all()
    assert db.get(LoginThrottle, "zoe.parent@tilleuls.test") is None


def test_unknown_address_is_throttled_like_a_real_one(client):
    for _ in range(3):
        client.submit("/", {"email": "inconnu@tilleuls.test", "password": "mauvais-mot-de-passe"})
    response = client.submit("/", {"email": "inconnu@tilleuls.test", "password": "mauvais-mot-de-passe"})
    assert "Trop de tentatives de connexion" in response.get_data(as_text=True)


def test_logout_ends_the_session(client, auth):
    auth.login()
    response = auth.logout()
    assert response.status_code == 302
    html = client.get("/").get_data(as_text=True)
    assert "Vous êtes déconnecté(e)." in html
    assert ">Connexion</button>" in html
    assert client.get("/compte/famille/modifier").status_code == 302


def test_login_starts_a_fresh_session(client, app):
    client.get("/compte/")
    with client.raw.session_transaction() as sess:
        sess["planted"] = "by an attacker"
    client.submit("/", {"email": "zoe.parent@tilleuls.test", "password": "zoe-parent-tilleuls"})
    with client.raw.session_transaction() as sess:
        assert "planted" not in sess
        assert sess["_user_id"].startswith(str(_user_id(app, "zoe.parent@tilleuls.test")) + ".")


def _user_id(app, email):
    with Session(app.extensions["ribambelle.engine"]) as s:
        return s.exec(select(User).where(User.email == email)).one().id


def _cookie_expiry(response) -> datetime:
    jar = SimpleCookie()
    jar.load(response.headers["Set-Cookie"])
    return parsedate_to_datetime(jar["ribambelle_session"]["expires"])


def test_idle_browser_comes_back_to_session_expired(client, auth, monkeypatch):
    """A real browser keeps its cookie while the parent is away; the server ends the idle session."""
    login = auth.login()
    expires = _cookie_expiry(login)
    # The cookie outlives the idle limit: the browser still sends it 31 minutes later, as browsers do.
    assert expires - datetime.now(timezone.utc) > timedelta(hours=11)
    later = time.time() + 31 * 60
    monkeypatch.setattr(security, "clock", lambda: later)
    response = client.get("/compte/famille/modifier", follow_redirects=True)
    text = page_text(response)
    assert "Votre session a expiré. Reconnectez-vous." in text and "Se connecter à votre espace personnel" in text
    # And the session is ended on the server: going back to the clock of before opens nothing either.
    monkeypatch.setattr(security, "clock", time.time)
    assert client.get("/compte/famille/modifier").status_code == 302


def test_active_session_stays_open_under_the_idle_limit(client, auth, monkeypatch):
    auth.login()
    for minutes in (20, 40, 60):  # a click every 20 minutes: never idle for 30
        now = time.time() + minutes * 60
        monkeypatch.setattr(security, "clock", lambda now=now: now)
        assert client.get("/compte/famille/modifier").status_code == 200


def test_session_ends_after_12_hours_even_when_active(client, auth, monkeypatch):
    auth.login()
    for minutes in range(20, 12 * 60, 20):  # a click every 20 minutes for 12 hours
        now = time.time() + minutes * 60
        monkeypatch.setattr(security, "clock", lambda now=now: now)
        assert client.get("/compte/famille/modifier").status_code == 200, minutes
    now = time.time() + 12 * 60 * 60 + 60
    monkeypatch.setattr(security, "clock", lambda: now)
    assert client.get("/compte/famille/modifier").status_code == 302


def _child_id(db, first_name):
    return db.exec(select(Child).where(Child.first_name == first_name)).one().id


def test_logout_ends_the_session_on_the_server(app, client, auth, db):
    """A cookie copied before "Se déconnecter" opens nothing afterwards: family space, health record."""
    auth.login()
    stolen = client.raw.get_cookie("ribambelle_session").value
    child = f"/enfants/{_child_id(db, 'Zoé')}"
    assert "Mon compte famille" in page_text(client.get("/compte/"))
    assert client.get(child).status_code == 200
    auth.logout()
    thief = app.test_client()
    thief.set_cookie("ribambelle_session", stolen)
    home = page_text(thief.get("/"))
    assert "Se connecter à votre espace personnel" in home and "Mon compte famille" not in home
    assert thief.get(child).status_code == 302
    assert thief.get("/compte/famille/modifier").status_code == 302
    assert db.exec(select(func.count()).select_from(LoginSession)).one() == 0


def test_logout_of_an_agent_closes_the_health_export(app, client, auth):
    auth.login("agent@tilleuls.test")
    stolen = client.raw.get_cookie("ribambelle_session").value
    assert "Allergies" in client.get("/agent/exports/enfants.csv").get_data(as_text=True)
    auth.logout()
    thief = app.test_client()
    thief.set_cookie("ribambelle_session", stolen)
    response = thief.get("/agent/exports/enfants.csv")
    assert response.status_code == 302 and "/?next=" in response.headers["Location"]


def test_logout_from_every_device(app, client, auth, db):
    """« Se déconnecter de tous les appareils » ends the phone's session as well as this one."""
    auth.login()
    phone = Client(app.test_client())
    Auth(phone).login()
    assert "Mon compte famille" in page_text(phone.get("/compte/"))
    assert "Se déconnecter de tous les appareils" in page_text(client.get("/compte/"))
    response = client.submit("/", {}, action="/deconnexion/tous-les-appareils", follow_redirects=True)
    assert "Vous êtes déconnecté(e) de tous les appareils." in page_text(response)
    assert "Se connecter à votre espace personnel" in page_text(phone.get("/"))
    assert "Se connecter à votre espace personnel" in page_text(client.get("/"))
    assert db.exec(select(func.count()).select_from(LoginSession)).one() == 0


def test_session_cookie_is_httponly_lax_and_secure_over_https(app):
    raw = app.test_client()
    token_page = raw.get("/", base_url="https://localhost")
    response = raw.post(
        "/",
        base_url="https://localhost",
        headers={"Referer": "https://localhost/"},
        data={"csrf_token": csrf_from(token_page.get_data(as_text=True)), "email": "zoe.parent@tilleuls.test", "password": "zoe-parent-tilleuls"},
    )
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie
    plain = app.test_client().get("/").headers["Set-Cookie"]
    assert "Secure" not in plain


def test_htmx_request_with_expired_session_redirects_the_whole_page(client):
    response = client.get("/compte/famille/modifier", headers={"HX-Request": "true"})
    assert response.status_code == 204
    assert response.headers["HX-Redirect"].startswith("/?next=")


def test_login_redirects_only_to_this_site(client):
    page = client.get("/?next=https://evil.example/")
    token = page.get_data(as_text=True)
    response = client.post(
        "/?next=https://evil.example/",
        data={"csrf_token": csrf_from(token), "email": "zoe.parent@tilleuls.test", "password": "zoe-parent-tilleuls"},
    )
    assert response.headers["Location"] == "/compte/"  # the family space, not the address given


def test_post_without_csrf_token_is_refused_in_french_and_logs_nobody_in(client):
    response = client.post("/", data={"email": "zoe.parent@tilleuls.test", "password": "zoe-parent-tilleuls"})
    assert response.status_code == 400
    assert "Formulaire expiré" in response.get_data(as_text=True)
    assert ">Connexion</button>" in client.get("/").get_data(as_text=True)


def test_security_headers_and_a_csp_without_unsafe(client):
    response = client.get("/compte/")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    html = response.get_data(as_text=True)
    assert "<script>" not in html and " style=" not in html and " onclick=" not in html


def test_personal_pages_are_not_cached(client, auth):
    auth.login()
    assert client.get("/compte/").headers["Cache-Control"] == "no-store"


def test_healthz_answers_without_the_database(make_app):
    app = make_app(DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:1/none")
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_agent_logs_in_on_the_same_page_and_gets_the_back_office(client, auth):
    auth.login("agent@tilleuls.test")
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"] == "/agent/"
    assert "Demandes à valider" in client.get("/agent/").get_data(as_text=True)


def test_oversized_request_gets_a_french_page(client):
    response = client.post("/", data={"email": "x" * (13 * 1024 * 1024), "password": "x"})
    assert response.status_code == 413
    assert "Envoi trop volumineux" in response.get_data(as_text=True)


def test_absurd_numbers_get_a_french_page_not_a_500(client, auth, db):
    """Numbers no database column holds, in the path, the query string or a form."""
    auth.login()
    huge = "99999999999999999999"
    month = client.get(f"/reservations/planning/1/1?mois={huge}-01")
    assert month.status_code == 400 and "Le mois demandé n'existe pas" in page_text(month)
    assert client.get("/reservations/planning/1/1?mois=2027-13").status_code == 400
    for url in (f"/enfants/{huge}", f"/factures/{huge}", f"/reservations/planning/{huge}/1"):
        response = client.get(url)
        assert response.status_code == 404 and "Page introuvable" in page_text(response), url
    bad_child = client.get(f"/reservations/nouvelle?enfant={huge}")
    assert bad_child.status_code == 400 and "Un nombre de la demande est trop grand." in page_text(bad_child)
    auth.logout()
    auth.login("admin@tilleuls.test")
    for url in ("/agent/familles", "/admin/comptes", "/admin/etablissements/1/inscriptions", "/admin/journal"):
        too_big = client.get(f"{url}?page={huge}")
        assert too_big.status_code == 400 and "Requête invalide" in page_text(too_big), url
        past_the_end = client.get(f"{url}?page=5000")
        assert past_the_end.status_code == 404 and "Page introuvable" in page_text(past_the_end), url
        assert client.get(f"{url}?page=1").status_code == 200
