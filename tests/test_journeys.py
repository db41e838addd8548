"""Parent journeys of the guide in Debian's Chromium (Playwright): sections 1, 2 and 5."""
import re

import pytest
from playwright.sync_api import expect

from services import demo_data
from tests.factories import DEMO_PARENT, login

pytestmark = pytest.mark.demo  # walks the demo town as a visitor of `make run` would


def test_journey_1_log_in_and_out(page):
    login(page, DEMO_PARENT, password="pas-le-bon-mot-de-passe")
    expect(page.get_by_role("alert")).to_contain_text("Identifiant ou mot de passe incorrect.")
    expect(page.get_by_label("Identifiant (adresse mail)")).to_have_value("parent@demo.test")

    page.get_by_label("Mot de passe").fill("parent-demo-ribambelle")
    page.get_by_role("button", name="Connexion").click()
    expect(page.get_by_role("heading", name="Mon compte famille")).to_be_visible()
    for block in ("Mes informations", "Mes enfants", "Accueil de loisirs / Périscolaire", "Mes factures & paiements"):
        expect(page.get_by_role("heading", name=block)).to_be_visible()
    expect(page.get_by_role("link", name="Léa Martin")).to_be_visible()

    page.get_by_role("button", name="Se déconnecter", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Vous êtes déconnecté(e).")
    expect(page.get_by_role("button", name="Connexion")).to_be_visible()
    assert page.console_errors == []


def test_journey_2_forgotten_password_through_the_mail(page, smtp):
    page.goto("/")
    page.get_by_role("link", name="Identifiant ou Mot de passe oublié ?").click()
    page.get_by_label("Adresse mail").fill("parent@demo.test")
    page.get_by_role("button", name="Valider").click()
    expect(page.get_by_role("status")).to_contain_text("Si cette adresse correspond à un compte")
    page.get_by_role("link", name="OK").click()
    expect(page.get_by_role("button", name="Connexion")).to_be_visible()

    mail = smtp.wait_for("parent@demo.test")[0]
    assert "Votre identifiant de connexion : parent@demo.test" in smtp.text(mail)
    page.goto(smtp.link(mail))
    # The login for password managers is in the form, but neither seen nor editable.
    hint = page.locator('input[name="username"]')
    expect(hint).to_be_hidden()
    expect(hint).not_to_be_editable()
    page.get_by_label("Nouveau mot de passe", exact=True).fill("le chat dort sur le radiateur")
    page.get_by_label("Confirmez le nouveau mot de passe").fill("le chat dort sur le radiateur")
    page.get_by_role("button", name="Valider").click()
    expect(page.get_by_role("status")).to_contain_text("Votre nouveau mot de passe est enregistré")
    # Not logged in by the link: the login page, the login already filled in.
    expect(page.get_by_label("Identifiant (adresse mail)")).to_have_value("parent@demo.test")
    page.get_by_label("Mot de passe").fill("le chat dort sur le radiateur")
    page.get_by_role("button", name="Connexion").click()
    expect(page.get_by_role("heading", name="Mon compte famille")).to_be_visible()
    page.get_by_role("link", name="Modifier mon mot de passe").click()
    expect(page.locator('input[name="username"]')).to_be_hidden()

    # the link was single use
    page.goto(smtp.link(mail))
    expect(page.get_by_role("alert")).to_contain_text("Ce lien a déjà été utilisé")


def test_journey_5_change_the_login(page, smtp):
    login(page, DEMO_PARENT)
    page.get_by_role("link", name="Modifier mon login").click()
    page.get_by_label("Nouvelle adresse mail").fill("claire.martin@demo.test")
    page.get_by_label("Mot de passe actuel").fill("parent-demo-ribambelle")
    page.get_by_role("button", name="Modifier").click()
    expect(page.get_by_role("status")).to_contain_text("Votre demande de changement d'adresse mail est prise en charge")
    expect(page.get_by_text("en attente de confirmation")).to_be_visible()

    link = smtp.link(smtp.wait_for("claire.martin@demo.test")[0])
    page.goto(link)
    expect(page.get_by_role("heading", name="Mon compte famille")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Votre nouvelle adresse mail claire.martin@demo.test est confirmée")
    expect(page.get_by_text("claire.martin@demo.test", exact=True)).to_be_visible()

    page.get_by_role("button", name="Se déconnecter", exact=True).click()
    login(page, "claire.martin@demo.test", demo_data.DEMO_ACCOUNTS[DEMO_PARENT])
    expect(page.get_by_role("heading", name="Mon compte famille")).to_be_visible()


def test_family_change_in_the_browser_at_phone_width(page):
    login(page, DEMO_PARENT)
    page.get_by_role("link", name="Modifier les Informations de la famille").click()
    page.get_by_label("Code postal").fill("12")
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.get_by_role("alert")).to_contain_text("Le formulaire n'a pas été enregistré.")
    expect(page.get_by_text("Le code postal compte 5 chiffres.")).to_be_visible()
    # the error summary takes the focus so a screen reader reads it first
    expect(page.locator("#form-errors")).to_be_focused()  # (app.js runs once the page is parsed: wait for it)
    page.get_by_label("Code postal").fill("00200")
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.get_by_text("Modification en attente de validation").first).to_be_visible()
    # nothing wider than the phone screen
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert re.search(r"/$", page.url)
