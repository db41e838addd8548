"""« Les Inscriptions »: a parent asks to enrol a child (documents and consents), an agent accepts or
refuses with a message (mailed), a capped establishment keeps a waiting list in order, and a second
request or another family's child is refused."""
import io
import re

import pytest
from PIL import Image
from playwright.sync_api import expect
from sqlmodel import select

from models import (
    AuditEntry,
    Child,
    Document,
    DocumentType,
    Enrollment,
    EnrolmentRequest,
    Establishment,
    OutboxMail,
    RequiredDocument,
)
from tests.conftest import csrf_from, page_text, require_axe
from tests.factories import (
    AGENT,
    OTHER_PARENT,
    PARENT,
    SCHOOL,
    TOWN,
    child,
    login,
    violations,
)


@pytest.fixture
def app_settings(tmp_path):
    return {"DOCUMENTS_DIR": str(tmp_path / "pieces")}


@pytest.fixture
def opened(db):
    """The centre opens online enrolment, asks for each child's vaccination record (blocking), and
    takes 3 children at most; Noé is not enrolled there yet."""
    centre = db.exec(select(Establishment).where(Establishment.name == TOWN)).one()
    noe = child(db, "Noé")
    for row in db.exec(select(Enrollment).where(Enrollment.child_id == noe.id, Enrollment.establishment_id == centre.id)):
        db.delete(row)
    centre.enrolment_open, centre.enrolment_cap = True, 3
    vaccines = DocumentType(name="Carnet de vaccination", per_child=True, validity="school_year")
    db.add_all([centre, vaccines])
    db.flush()
    db.add(RequiredDocument(establishment_id=centre.id, document_type_id=vaccines.id, blocking=True))
    db.commit()
    return centre


def photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (30, 20), (10, 120, 10)).save(out, "JPEG")
    return out.getvalue()


def ask(client, db, centre, name="Noé", with_file=True, rules=True):
    path = f"/inscriptions/nouvelle?enfant={child(db, name).id}&structure={centre.id}"
    page = page_text(client.get(path))
    kind = db.exec(select(DocumentType)).one()
    data = {"csrf_token": csrf_from(page), "enfant": str(child(db, name).id), "structure": str(centre.id), "photos": "oui"}
    if rules:
        data["reglement"] = "oui"
    if with_file:
        data[f"piece-{kind.id}"] = (io.BytesIO(photo()), "carnet.jpg")
    return client.post(path, data=data, content_type="multipart/form-data", follow_redirects=True)


def test_a_parent_asks_to_enrol_and_an_agent_accepts(client, auth, db, opened):
    auth.login()
    home = page_text(client.get("/compte/"))
    assert "Les inscriptions" in home and "Inscrire mon enfant" in home
    choose = page_text(client.get("/inscriptions/nouvelle"))
    assert TOWN in choose and SCHOOL not in choose  # only what the town opens
    form = page_text(client.get(f"/inscriptions/nouvelle?enfant={child(db, 'Noé').id}&structure={opened.id}"))
    assert "Carnet de vaccination" in form and "J'ai lu le règlement intérieur" in form
    assert "Envoyer la demande d'inscription" in form
    done = page_text(ask(client, db, opened))
    assert "Demande d'inscription de Noé" in done and "En attente" in done
    request = db.exec(select(EnrolmentRequest)).one()
    assert request.status == "pending" and request.photos_ok and request.rules_accepted
    assert db.exec(select(Document)).one().child_id == child(db, "Noé").id  # the paper came with it
    auth.logout()
    auth.login(AGENT)
    queue = page_text(client.get("/inscriptions/a-traiter"))
    assert "Noé Durand — " + TOWN in queue and "Carnet de vaccination" in queue
    client.post(f"/inscriptions/{request.id}/decision", data={"csrf_token": csrf_from(queue), "decision": "accepter"})
    assert db.exec(select(Enrollment).where(Enrollment.child_id == child(db, "Noé").id,
                                            Enrollment.establishment_id == opened.id)).first() is not None
    db.refresh(request)
    assert request.status == "accepted"
    mails = db.exec(select(OutboxMail).where(OutboxMail.subject == "Demande d'inscription acceptée : Noé")).all()
    assert {m.recipient for m in mails} == {PARENT, "zoe.parent2@tilleuls.test"}  # every guardian
    assert db.exec(select(AuditEntry).where(AuditEntry.target == "enrolment")).one()


def test_a_refusal_needs_its_reason_which_the_family_reads(client, auth, db, opened):
    auth.login()
    ask(client, db, opened)
    request = db.exec(select(EnrolmentRequest)).one()
    auth.logout()
    auth.login(AGENT)
    queue = page_text(client.get("/inscriptions/a-traiter"))
    client.post(f"/inscriptions/{request.id}/decision", data={"csrf_token": csrf_from(queue), "decision": "refuser"})
    assert "motif du refus" in page_text(client.get("/inscriptions/a-traiter"))
    client.post(f"/inscriptions/{request.id}/decision", data={"csrf_token": csrf_from(queue), "decision": "refuser",
                                                               "message": "Noé est déjà accueilli à la crèche le mercredi."})
    db.refresh(request)
    assert request.status == "refused"
    mail = db.exec(select(OutboxMail).where(OutboxMail.subject == "Demande d'inscription refusée : Noé",
                                            OutboxMail.recipient == PARENT)).one()
    assert "déjà accueilli à la crèche" in mail.body_text
    auth.logout()
    auth.login()
    home = page_text(client.get("/compte/"))
    assert "Refusée" in home and "déjà accueilli à la crèche" in home


def test_nothing_is_sent_without_the_rules_or_the_paper_or_twice(client, auth, db, opened):
    auth.login()
    assert "règlement intérieur" in page_text(ask(client, db, opened, rules=False))
    assert "Joignez le document « Carnet de vaccination »" in page_text(ask(client, db, opened, with_file=False))
    assert db.exec(select(EnrolmentRequest)).all() == [] and db.exec(select(Document)).all() == []
    ask(client, db, opened)
    again = page_text(ask(client, db, opened))
    assert "est déjà en cours" in again and len(db.exec(select(EnrolmentRequest)).all()) == 1
    already = page_text(ask(client, db, opened, name="Zoé"))
    assert "Zoé est déjà inscrit(e)" in already


def test_another_familys_child_is_404(client, auth, db, opened):
    auth.login(OTHER_PARENT)
    assert client.get(f"/inscriptions/nouvelle?enfant={child(db, 'Noé').id}&structure={opened.id}").status_code == 404
    page = page_text(client.get("/compte/"))
    forged = client.post(f"/inscriptions/nouvelle?enfant={child(db, 'Noé').id}&structure={opened.id}",
                         data={"csrf_token": csrf_from(page), "reglement": "oui"})
    assert forged.status_code == 404 and db.exec(select(EnrolmentRequest)).all() == []


def test_a_full_establishment_keeps_a_waiting_list_in_order(client, auth, db, opened):
    enrolled = len(db.exec(select(Enrollment).where(Enrollment.establishment_id == opened.id)).all())
    opened.enrolment_cap = enrolled  # full
    db.add(opened)
    db.commit()
    auth.login()
    done = page_text(ask(client, db, opened))
    assert "sur la liste d'attente" in done
    request = db.exec(select(EnrolmentRequest)).one()
    assert request.status == "waitlist"
    auth.logout()
    auth.login(AGENT)
    queue = page_text(client.get("/inscriptions/a-traiter"))
    client.post(f"/inscriptions/{request.id}/decision", data={"csrf_token": csrf_from(queue), "decision": "accepter"})
    assert "est complet" in page_text(client.get("/inscriptions/a-traiter"))
    db.refresh(request)
    assert request.status == "waitlist"
    opened.enrolment_cap = enrolled + 1  # a place frees
    db.add(opened)
    db.commit()
    client.post(f"/inscriptions/{request.id}/decision", data={"csrf_token": csrf_from(queue), "decision": "accepter"})
    db.refresh(request)
    assert request.status == "accepted"
    assert db.exec(select(Child).where(Child.first_name == "Noé")).one()


def test_in_chromium_at_360px_enrol_with_a_photo_the_agent_accepts_and_the_parent_books(browser, live_server, db, opened,
                                                                                         tmp_path):
    require_axe()
    parent = browser.new_context(base_url=live_server, locale="fr-FR", viewport={"width": 360, "height": 740})
    page = parent.new_page()
    page.set_default_timeout(10000)
    login(page)
    page.get_by_role("link", name="Inscrire mon enfant").click()
    page.get_by_label("Noé Durand").check()
    page.get_by_label(TOWN).check()
    page.get_by_role("button", name="Continuer").click()
    picture = tmp_path / "carnet.jpg"
    picture.write_bytes(photo())  # what the phone's camera gives the file input
    page.get_by_label("Carnet de vaccination").set_input_files(str(picture))
    page.get_by_label(re.compile("J'ai lu le règlement intérieur")).check()
    assert violations(page) == []
    page.get_by_role("button", name="Envoyer la demande d'inscription").click()
    expect(page.get_by_text("Demande d'inscription de Noé")).to_be_visible()
    expect(page.locator("section[aria-labelledby=inscriptions]").get_by_text("En attente")).to_be_visible()
    agent = browser.new_context(base_url=live_server, locale="fr-FR", viewport={"width": 360, "height": 740})
    office = agent.new_page()
    office.set_default_timeout(10000)
    login(office, AGENT)
    office.goto("/inscriptions/a-traiter")
    office.get_by_role("button", name="Accepter l'inscription de Noé").click()
    expect(office.get_by_text("Inscription acceptée")).to_be_visible()
    office.goto("/documents/a-valider")  # the photographed record, which booking there needs
    office.get_by_role("button", name="Accepter : Carnet de vaccination, famille Durand").click()
    expect(office.get_by_text("Document accepté.")).to_be_visible()
    agent.close()
    page.goto("/compte/")
    page.wait_for_load_state("load")
    page.get_by_role("link", name="Nouvelle réservation").click()
    window = page.get_by_role("dialog", name="Nouvelle réservation")
    window.get_by_label("Noé Durand").check()
    expect(window.get_by_label(TOWN)).to_be_checked()  # his one establishment, now that he is enrolled
    window.locator("input[name=periode]").first.check()
    window.get_by_role("button", name="Continuer").click()
    expect(page.get_by_role("heading", name="Planning de Noé Durand")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    for _ in range(3):  # the first month with a day free to book
        if page.locator("td.cell--available button").count():
            break
        page.get_by_role("link", name=re.compile("Mois suivant")).click()
    cell = page.locator("td.cell--available").filter(has=page.locator("button")).first
    cell_id = cell.get_attribute("id")
    cell.get_by_role("button").click()
    expect(page.locator(f"#{cell_id}")).to_have_class(re.compile("cell--selected"))
    page.get_by_role("link", name="Valider le planning").click()
    page.get_by_role("button", name="Confirmer la réservation").click()
    expect(page.get_by_text(re.compile(r"R-\d{4}-\d{6}")).first).to_be_visible()
    assert db.exec(select(Enrollment).where(Enrollment.child_id == child(db, "Noé").id)).first() is not None
    parent.close()
