"""Pièces justificatives: what each establishment requires, the upload from a phone (type read from the
content, photos re-encoded without EXIF), every bad input refused with nothing stored, downloads for
the family and staff only, the agents' decision, blocking booking, the expiry reminder."""
import io
import re
import zlib
from datetime import date, timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlmodel import select

from db import writing_session
from models import (
    AuditEntry,
    Child,
    Document,
    DocumentType,
    Draft,
    Establishment,
    Family,
    OutboxMail,
    Period,
    RequiredDocument,
    User,
    utcnow,
)
from services import documents, households, pdf, planning
from services.calendar import paris_today
from services.planning.rules import PlanningError
from tests.conftest import csrf_from, page_text
from tests.factories import AGENT, OTHER_PARENT, PARENT, TOWN, child, parent_id, town_period, units, weekday_ahead


@pytest.fixture
def app_settings(tmp_path):
    return {"DOCUMENTS_DIR": str(tmp_path / "pieces")}


@pytest.fixture
def asked(db):
    """The centre requires each child's vaccination record before booking, and asks (a warning only)
    for the family's insurance certificate."""
    centre = db.exec(select(Establishment).where(Establishment.name == TOWN)).one()
    vaccines = DocumentType(name="Carnet de vaccination", per_child=True, validity="school_year")
    insurance = DocumentType(name="Attestation d'assurance", per_child=False, validity="calendar_year")
    db.add_all([vaccines, insurance])
    db.flush()
    db.add_all([RequiredDocument(establishment_id=centre.id, document_type_id=vaccines.id, blocking=True),
                RequiredDocument(establishment_id=centre.id, document_type_id=insurance.id, blocking=False)])
    db.commit()
    return {"vaccines": vaccines, "insurance": insurance}


def photo(exif=True, size=(60, 40)) -> bytes:
    """A camera photo held upright: landscape pixels, EXIF orientation 6 (turn it), a GPS position."""
    image = Image.new("RGB", size, (200, 30, 30))
    out = io.BytesIO()
    if exif:
        data = Image.Exif()
        data[0x0112] = 6  # Orientation: rotate 90° clockwise to view
        data[0x010F] = "PhoneMaker"
        data.get_ifd(0x8825)[2] = (48.0, 51.0, 24.0)  # GPSLatitude
        image.save(out, "JPEG", exif=data.tobytes())
    else:
        image.save(out, "JPEG")
    return out.getvalue()


def send(client, db, kind, data, name="carnet.jpg", kid="Zoé"):
    page = page_text(client.get("/documents/"))
    form = {"csrf_token": csrf_from(page), "type": str(kind.id), "fichier": (io.BytesIO(data), name)}
    if kid:
        form["enfant"] = str(child(db, kid).id)
    return client.post("/documents/", data=form, content_type="multipart/form-data", follow_redirects=True)


def documents_dir(app) -> Path:
    return Path(app.config["DOCUMENTS_DIR"])


def stored_files(app):
    path = documents_dir(app)
    return sorted(p.name for p in path.iterdir()) if path.exists() else []


def test_the_family_sees_what_is_asked_and_sends_a_photo_stripped_of_exif(app, client, auth, db, asked):
    auth.login()
    page = page_text(client.get("/documents/"))
    assert "Carnet de vaccination — Zoé" in page and "Carnet de vaccination — Noé" in page
    assert "Attestation d'assurance" in page and "Manquant" in page and "Obligatoire pour réserver" in page
    assert 'accept="image/*,application/pdf"' in page
    done = page_text(send(client, db, asked["vaccines"], photo(), name="IMG_2041.jpg"))
    assert "Document « Carnet de vaccination » envoyé" in done and "En attente de validation" in done
    document = db.exec(select(Document)).one()
    assert document.status == "pending" and document.child_id == child(db, "Zoé").id
    assert document.file_name == "IMG_2041.jpg" and document.content_type == "image/jpeg"
    path = documents.path_of(documents_dir(app), document)
    assert "static" not in str(path) and path.parent == documents_dir(app)
    with Image.open(path) as kept:
        assert kept.size == (40, 60)  # turned as the camera was held
        assert dict(kept.getexif()) == {} and "exif" not in kept.info  # no EXIF, no position
    assert document.stored_name != document.file_name and document.size == path.stat().st_size
    on_the_child = page_text(client.get(f"/enfants/{child(db, 'Zoé').id}"))
    assert "Documents de Zoé" in on_the_child and "Carnet de vaccination : En attente de validation" in on_the_child


def zip_bomb_pdf() -> bytes:
    inflated = zlib.compress(b"\0" * (120 * 1024 * 1024), 9)  # 120 MB of zeros in ~120 KB
    return (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
            b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
            b"3 0 obj << /Length " + str(len(inflated)).encode() + b" /Filter /FlateDecode >>\nstream\n"
            + inflated + b"\nendstream\nendobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")


@pytest.mark.parametrize("case, data, name, words", [
    ("empty", b"", "carnet.pdf", "Le fichier est vide"),
    ("10.5 MB", b"%PDF-1.4\n" + b"0" * (21 * 512 * 1024), "carnet.pdf", "dépasse 10 Mo"),
    ("13 MB, past what the server takes", b"%PDF-1.4\n" + b"0" * (13 * 1024 * 1024), "carnet.pdf", "un fichier de 10 Mo au plus"),
    ("a renamed exe", b"MZ\x90\x00\x03" + b"\0" * 200, "carnet.pdf", "ni un PDF, ni une photo"),
    ("an SVG with a script", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "carnet.png",
     "ni un PDF, ni une photo"),
    ("HTML", b"<html><body><script>document.cookie</script></body></html>", "carnet.jpg", "ni un PDF, ni une photo"),
    ("a PNG that is not one", b"\x89PNG\r\n\x1a\n" + b"pas une image" * 20, "carnet.png", "illisible ou abîmée"),
    ("a PDF with JavaScript", None, "carnet.pdf", "contient un script"),
    ("a zip bomb in a PDF", None, "bombe.pdf", "démesuré"),
])
def test_bad_files_are_refused_in_french_and_nothing_is_stored(app, client, auth, db, asked, case, data, name, words):
    if case == "a PDF with JavaScript":
        data = pdf.html_to_pdf("<p>Carnet</p>").replace(b"/Type /Catalog", b"/Type /Catalog /OpenAction << /S /JavaScript /JS (app.alert(1)) >>", 1)
    elif case == "a zip bomb in a PDF":
        data = zip_bomb_pdf()
    auth.login()
    answer = page_text(send(client, db, asked["vaccines"], data, name=name))
    assert words in answer
    assert db.exec(select(Document)).all() == [] and stored_files(app) == []


def test_a_path_in_the_name_is_only_a_name_and_a_pdf_is_kept_as_sent(app, client, auth, db, asked):
    auth.login()
    content = pdf.html_to_pdf("<p>Attestation d'assurance 2026</p>")
    send(client, db, asked["insurance"], content, name="../../etc/passwd.pdf", kid=None)
    document = db.exec(select(Document)).one()
    assert document.file_name == "passwd.pdf" and document.child_id is None
    assert documents.path_of(documents_dir(app), document).read_bytes() == content
    assert stored_files(app) == [document.stored_name]


def test_a_forged_form_for_another_familys_child_or_an_unasked_paper_is_404(client, auth, db, asked):
    auth.login(OTHER_PARENT)
    page = page_text(client.get("/documents/"))
    forged = client.post("/documents/", data={"csrf_token": csrf_from(page), "type": str(asked["vaccines"].id),
                                              "enfant": str(child(db, "Zoé").id), "fichier": (io.BytesIO(photo()), "x.jpg")},
                         content_type="multipart/form-data")
    assert forged.status_code == 404
    other = DocumentType(name="Jugement de garde", per_child=False, validity="none")
    db.add(other)
    db.commit()
    unasked = client.post("/documents/", data={"csrf_token": csrf_from(page), "type": str(other.id),
                                               "fichier": (io.BytesIO(photo()), "x.jpg")}, content_type="multipart/form-data")
    assert unasked.status_code == 404 and db.exec(select(Document)).all() == []


def test_only_the_family_and_staff_download_it_as_an_attachment(client, auth, db, asked):
    auth.login()
    send(client, db, asked["vaccines"], photo())
    document = db.exec(select(Document)).one()
    mine = client.get(f"/documents/{document.id}")
    assert mine.status_code == 200 and mine.headers["Content-Disposition"].startswith("attachment;")
    assert mine.headers["Cache-Control"] == "no-store" and mine.headers["X-Content-Type-Options"] == "nosniff"
    auth.logout()
    assert client.get(f"/documents/{document.id}").status_code == 302  # to the login page
    auth.login(OTHER_PARENT)
    assert client.get(f"/documents/{document.id}").status_code == 404
    auth.logout()
    auth.login(AGENT)
    assert client.get(f"/documents/{document.id}").status_code == 200


def test_in_shared_custody_the_childs_papers_are_both_households_and_the_familys_its_own(app, client, auth, db, asked):
    with app.test_request_context():
        households.link(db, db.exec(select(User.id).where(User.email == AGENT)).one(), child(db),
                        db.exec(select(Family).where(Family.name == "Haddad")).one())
    auth.login(PARENT)
    send(client, db, asked["vaccines"], photo())
    send(client, db, asked["insurance"], photo(), name="assurance.jpg", kid=None)
    vaccines = db.exec(select(Document).where(Document.document_type_id == asked["vaccines"].id)).one()
    insurance = db.exec(select(Document).where(Document.document_type_id == asked["insurance"].id)).one()
    auth.logout()
    auth.login(OTHER_PARENT)
    page = page_text(client.get("/documents/"))
    assert re.search(r"Carnet de vaccination\W+Zoé</h2>\s*<p>[^<]*<img[^>]*> <strong>En attente de validation", page)
    assert "Noé" not in page  # the Durand household's other child is not the Haddad's
    assert client.get(f"/documents/{vaccines.id}").status_code == 200
    assert client.get(f"/documents/{insurance.id}").status_code == 404  # the Durand household's own paper
    kinds = [(n.kind.name, n.child.first_name if n.child else None, n.state)
             for n in documents.needed(db, db.exec(select(Family.id).where(Family.name == "Haddad")).one(), paris_today(utcnow()))]
    assert ("Attestation d'assurance", None, "missing") in kinds and ("Carnet de vaccination", "Zoé", "pending") in kinds


def test_an_agent_accepts_or_refuses_with_a_message_mailed_and_journaled(client, auth, db, asked):
    auth.login()
    send(client, db, asked["vaccines"], photo())
    send(client, db, asked["insurance"], photo(), kid=None)
    auth.logout()
    auth.login(AGENT)
    page = page_text(client.get("/documents/a-valider"))
    assert "Carnet de vaccination — Zoé — famille Durand" in page and "Attestation d'assurance — famille Durand" in page
    vaccines, insurance = db.exec(select(Document).order_by(Document.id)).all()
    client.post(f"/documents/{insurance.id}/decision", data={"csrf_token": csrf_from(page), "decision": "refuser"})
    assert "Dites à la famille pourquoi" in page_text(client.get("/documents/a-valider"))
    client.post(f"/documents/{insurance.id}/decision", data={"csrf_token": csrf_from(page), "decision": "refuser",
                                                              "message": "L'attestation est celle de l'an dernier."})
    client.post(f"/documents/{vaccines.id}/decision", data={"csrf_token": csrf_from(page), "decision": "accepter",
                                                             "jusquau": ""})
    db.expire_all()
    today = paris_today(vaccines.uploaded_at)
    accepted = db.get(Document, vaccines.id)
    assert accepted.status == "valid" and accepted.valid_until == date(today.year if today.month < 9 else today.year + 1, 8, 31)
    assert db.get(Document, insurance.id).status == "refused"
    refused = db.exec(select(OutboxMail).where(OutboxMail.subject == "Document refusé : Attestation d'assurance",
                                               OutboxMail.recipient == PARENT)).one()
    assert "celle de l'an dernier" in refused.body_text
    assert len(db.exec(select(AuditEntry).where(AuditEntry.target == "document")).all()) == 2
    auth.logout()
    auth.login()
    page = page_text(client.get("/documents/"))
    assert "Valide" in page and "Refusé" in page and "celle de l'an dernier" in page


def confirm(db, name="Zoé"):
    zoe, period = child(db, name), town_period(db)
    draft = db.exec(select(Draft).where(Draft.child_id == zoe.id)).one()
    with writing_session(db.get_bind()) as w:
        return planning.confirm(w, parent_id(db, name), w.get(Child, zoe.id), w.get(Period, period.id), draft.revision,
                                utcnow()).number


def test_a_missing_blocking_paper_stops_the_booking_until_it_is_accepted(app, db, asked, client, auth):
    zoe, period, made = child(db, "Zoé"), town_period(db), units(db)
    planning.toggle(db, zoe, period, made["matinee"].id, weekday_ahead(10), utcnow())
    auth.login()
    recap = page_text(client.get(f"/reservations/planning/{zoe.id}/{period.id}/recapitulatif"))
    assert "Pour réserver, envoyez d'abord ce document : Carnet de vaccination." in recap
    with pytest.raises(PlanningError, match="Carnet de vaccination"):
        confirm(db)
    db.add(Document(family_id=zoe.family_id, child_id=zoe.id, document_type_id=asked["vaccines"].id, status="valid",
                    valid_until=date.today() + timedelta(days=200), file_name="c.jpg", stored_name="x.jpg",
                    content_type="image/jpeg", size=1, sha256="0" * 64, uploaded_by_id=parent_id(db)))
    db.commit()
    recap = page_text(client.get(f"/reservations/planning/{zoe.id}/{period.id}/recapitulatif"))
    assert "Pour réserver" not in recap and "Attestation d'assurance" in recap  # the warning stays
    assert confirm(db).startswith("R-")


def test_a_reminder_goes_30_days_before_a_document_ends_once(app, db, asked):
    zoe = child(db, "Zoé")
    today = date.today()
    for days, name in ((20, "soon.jpg"), (90, "later.jpg")):
        db.add(Document(family_id=zoe.family_id, child_id=zoe.id, document_type_id=asked["vaccines"].id, status="valid",
                        valid_until=today + timedelta(days=days), file_name=name, stored_name=name,
                        content_type="image/jpeg", size=1, sha256="0" * 64, uploaded_by_id=parent_id(db)))
    db.commit()
    with app.app_context():
        assert documents.remind_expiring(db, today) == 1
        assert documents.remind_expiring(db, today) == 0
    mails = db.exec(select(OutboxMail).where(OutboxMail.subject == "Document bientôt expiré : Carnet de vaccination de Zoé")).all()
    assert PARENT in {m.recipient for m in mails}


def test_the_admin_lists_papers_requires_them_and_sees_the_space_used(client, auth, db, asked):
    auth.login("admin@tilleuls.test")
    page = page_text(client.get("/admin/documents"))
    assert "Carnet de vaccination" in page and "Obligatoire pour réserver" in page and "Espace utilisé" in page
    client.post("/admin/documents", data={"csrf_token": csrf_from(page), "nom": "PAI", "pour": "enfant",
                                          "validite": "months", "mois": "12"})
    pai = db.exec(select(DocumentType).where(DocumentType.name == "PAI")).one()
    assert pai.per_child and pai.validity == "months" and pai.months == 12
    assert documents.valid_until(pai, date(2027, 1, 31)) == date(2028, 1, 31)
    centre = db.exec(select(Establishment).where(Establishment.name == TOWN)).one()
    client.post(f"/admin/documents/{pai.id}/structures", data={"csrf_token": csrf_from(page), f"structure-{centre.id}": "block"})
    assert db.exec(select(RequiredDocument).where(RequiredDocument.document_type_id == pai.id)).one().blocking
    bad = client.post(f"/admin/documents/{pai.id}/structures", data={"csrf_token": csrf_from(page), f"structure-{centre.id}": "toujours"})
    assert bad.status_code == 400


def test_nginx_lets_a_10_mb_document_reach_the_app(app):
    """nginx's own limit above the app's: whatever is too big is refused by the app, in French."""
    conf = (Path(__file__).resolve().parent.parent / "deploy" / "nginx.conf").read_text()
    megabytes = int(re.search(r"client_max_body_size (\d+)m;", conf).group(1))
    assert megabytes * 1024 * 1024 > app.config["MAX_CONTENT_LENGTH"] > documents.MAX_SIZE
