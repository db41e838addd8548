"""The mail outbox: nothing is lost while the SMTP server is down, and nothing is sent twice."""
import re
import threading
from datetime import timedelta

from aiosmtpd.controller import Controller
from sqlalchemy import update
from sqlmodel import select

import models
from db import get_db
from models import AuthToken, OutboxMail, User, utcnow
from services import outbox
from tests.conftest import Auth, Client, SMTPServer, free_port, page_text
from tests.factories import make_town


def test_mail_due_while_smtp_is_down_goes_out_once_when_it_is_back(make_app, db_factory):
    port = free_port()  # nothing listens here yet
    app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_TIMEOUT=2)

    with app.app_context():
        make_town(get_db(), app.extensions["ribambelle.hasher"])
    client = Client(app.test_client())
    response = client.submit("/identifiant-oublie", {"email": "zoe.parent@tilleuls.test"})
    assert response.status_code == 200
    assert "Si cette adresse correspond à un compte" in page_text(response)  # the action succeeded

    db = db_factory(app)
    mail = db.exec(select(OutboxMail)).one()
    assert mail.status == "pending" and mail.attempts == 1 and mail.last_error

    server = SMTPServer()
    server.port = port

    server.controller = Controller(server.controller.handler, hostname="127.0.0.1", port=port)
    server.start()
    try:
        assert outbox.deliver_pending(app) == (0, 0)  # not due yet: it waits before retrying
        outbox.retry_now(app)
        assert outbox.deliver_pending(app) == (1, 0)
        assert outbox.deliver_pending(app) == (0, 0)
        assert len(server.to("zoe.parent@tilleuls.test")) == 1
        db.expire_all()
        assert db.exec(select(OutboxMail)).one().status == "sent"
    finally:
        server.stop()


def test_two_senders_at_once_send_each_mail_once(app, smtp, db):
    with app.test_request_context():
        for i in range(20):
            outbox.queue(db, f"famille{i}@tilleuls.test", "Essai", "login_change_notice",
                         user=type("U", (), {"first_name": "Test"})(), new_email="x@tilleuls.test")
        db.commit()
    results = []
    threads = [threading.Thread(target=lambda: results.append(outbox.deliver_pending(app))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(sent for sent, _ in results) == 20
    assert len(smtp.messages) == 20
    assert sorted(m["To"] for m in smtp.messages) == sorted(f"famille{i}@tilleuls.test" for i in range(20))


def test_without_a_mail_server_mails_wait_and_the_demo_mailbox_shows_them(make_app):
    app = make_app(DEMO_MAILBOX=True)

    with app.app_context():
        make_town(get_db(), app.extensions["ribambelle.hasher"])
    client = Client(app.test_client())
    client.submit("/identifiant-oublie", {"email": "zoe.parent@tilleuls.test"})
    listing = page_text(client.get("/demo/courriels"))
    assert "zoe.parent@tilleuls.test" in listing and "nouveau mot de passe" in listing

    mail_url = re.search(r'href="(/demo/courriels/\d+)"', listing).group(1)
    body = page_text(client.get(mail_url))
    link = re.search(r'href="(http://localhost/mot-de-passe/nouveau/[^"]+)"', body).group(1)
    assert client.get(link.replace("http://localhost", "")).status_code == 200


def test_demo_mailbox_is_off_unless_asked_for(client):
    assert client.get("/demo/courriels").status_code == 404


def test_after_an_outage_flask_mail_send_now_sends_what_waits_for_its_next_try(make_app, db_factory):
    """SMTP came back: `flask mail send --now` does not wait for the back-off; each try keeps its Message-ID."""
    port = free_port()
    app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_TIMEOUT=2)
    with app.test_request_context():
        outbox.queue(get_db(), "famille@tilleuls.test", "Essai", "login_change_notice",
                     user=type("U", (), {"first_name": "Test"})(), new_email="x@tilleuls.test")
        get_db().commit()
    for _ in range(8):  # a long outage: many failed tries
        outbox.retry_now(app)
        assert outbox.deliver_pending(app) == (0, 1)
    db = db_factory(app)
    row = db.exec(select(OutboxMail)).one()
    assert row.attempts == 8 and row.message_id.startswith("<") and row.message_id.endswith(">")
    assert row.next_attempt_at <= utcnow() + timedelta(minutes=outbox.MAX_BACKOFF_MINUTES, seconds=5)  # capped
    server = SMTPServer()
    server.port = port

    server.controller = Controller(server.controller.handler, hostname="127.0.0.1", port=port)
    server.start()
    try:
        assert outbox.deliver_pending(app) == (0, 0)  # not due yet
        output = app.test_cli_runner().invoke(args=["mail", "send", "--now"]).output
        assert "1 envoyé(s), 0 en échec" in output
        (mail,) = server.to("famille@tilleuls.test")
        assert mail["Message-ID"] == row.message_id
    finally:
        server.stop()


def test_a_mail_sent_twice_after_a_crash_has_one_message_id(app, smtp, db):
    """A sender killed after the SMTP server took the mail but before it was marked sent: the claim expires,
    the mail goes again — with the same Message-ID, so the second copy is recognisable."""
    with app.test_request_context():
        outbox.queue(db, "famille@tilleuls.test", "Essai", "login_change_notice",
                     user=type("U", (), {"first_name": "Test"})(), new_email="x@tilleuls.test")
        db.commit()
    assert outbox.deliver_pending(app) == (1, 0)
    row = db.exec(select(OutboxMail)).one()
    # As if the process died right after sending: still "sending", its claim now expired.
    db.execute(update(OutboxMail).where(OutboxMail.id == row.id)
               .values(status="sending", locked_until=utcnow() - timedelta(seconds=1)))
    db.commit()
    assert outbox.deliver_pending(app) == (1, 0)
    copies = smtp.to("famille@tilleuls.test")
    assert len(copies) == 2 and copies[0]["Message-ID"] == copies[1]["Message-ID"] == row.message_id


def test_a_link_that_expired_while_the_mail_waited_is_renewed(make_app, db_factory):
    """A login confirmation (48 h) queued during a long SMTP outage: it leaves with a fresh link."""
    port = free_port()
    app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_TIMEOUT=2)
    with app.app_context():
        make_town(get_db(), app.extensions["ribambelle.hasher"])
    client = Client(app.test_client())
    Auth(client).login()
    client.submit("/compte/login/modifier", {"email": "anne.neuve@tilleuls.test", "current": "zoe-parent-tilleuls"})
    db = db_factory(app)
    db.execute(update(AuthToken).values(expires_at=models.utcnow() - timedelta(minutes=1)))  # three days later
    db.commit()
    server = SMTPServer()
    server.port = port

    server.controller = Controller(server.controller.handler, hostname="127.0.0.1", port=port)
    server.start()
    try:
        outbox.retry_now(app)
        outbox.deliver_pending(app)
        link = SMTPServer.link(server.wait_for("anne.neuve@tilleuls.test")[0])
    finally:
        server.stop()
    response = client.get(link.split("localhost", 1)[1], follow_redirects=True)
    assert "est confirmée" in page_text(response)
    db.expire_all()
    assert db.exec(select(User).where(User.email == "anne.neuve@tilleuls.test")).one()
