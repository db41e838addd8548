"""The mail outbox: every mail is written to the database first, then sent.

A mail due while the SMTP server is down is not lost: the action that wrote it succeeds, and the
mail is retried until the server takes it. Each send first claims the row with a conditional
UPDATE, so several app processes (or threads) never send the same mail twice.
"""
from __future__ import annotations

import re
import smtplib
import socket
import threading
from datetime import timedelta
from email.utils import make_msgid

from flask import current_app, render_template
from flask_mail import Message
from sqlalchemy import and_, or_, update
from sqlmodel import Session, select

from db import writing_session
from extensions import mail as flask_mail
from models import AuthToken, OutboxMail, User, utcnow
from services import accounts
from services.links import external_url, portal_url

CLAIM_SECONDS = 120  # a claim older than this is considered dead (process killed mid-send)
MAX_BACKOFF_MINUTES = 5  # while the SMTP server answers nothing, a mail is tried again at least this often


def new_message_id() -> str:
    """A Message-ID for a mail of the outbox, kept with it and sent on every try."""
    domain = (current_app.config.get("MAIL_DEFAULT_SENDER") or "").rsplit("@", 1)[-1].strip("> ") or "ribambelle.invalid"
    return make_msgid(domain=domain)


def _render(template: str, **context) -> tuple[str, str]:
    """The text and HTML of ``templates/mail/<template>``, with the town's name and the portal's address."""
    context.setdefault("town_name", current_app.config["TOWN_NAME"])
    context.setdefault("portal_url", portal_url())
    return render_template(f"mail/{template}.txt", **context), render_template(f"mail/{template}.html", **context)


def queue(db: Session, recipient: str, subject: str, template: str, link_token: str = "", **context) -> OutboxMail:
    """Write a mail from ``templates/mail/<template>.txt`` (and ``.html``) to the outbox.

    ``link_token``: the single-use link's token the mail carries (its ``link``), renewed if it expires
    before the mail leaves. The caller commits; the mail leaves with the next ``deliver_pending``.
    """
    text, html = _render(template, **context)
    mail = OutboxMail(recipient=recipient, subject=subject, body_text=text, body_html=html, message_id=new_message_id(),
                      token_hash=accounts.token_hash(link_token) if link_token else "")
    db.add(mail)
    return mail


def queue_family(db: Session, family_id: int, subject: str, template: str, **context) -> list[OutboxMail]:
    """The same mail to every active login of the family (both guardians), each with its own ``user``."""
    users = db.exec(select(User).where(User.family_id == family_id, User.active == True)  # noqa: E712
                    .order_by(User.id)).all()
    return [queue(db, user.email, subject, template, user=user, **context) for user in users]


def queue_invite(db: Session, user: User, token: str, town_name: str) -> OutboxMail:
    """The mail of a new account, with its 7-day link to choose a password (an "invite" token)."""
    return queue(db, user.email, f"Votre compte sur le portail famille de {town_name}", "account_invite",
                 link_token=token, user=user, link=external_url("auth.reset", token=token))


def queue_password_reset(db: Session, typed_email: str) -> OutboxMail:
    """Queue the "identifiant ou mot de passe oublié" mail for whatever address was typed.

    Nothing is looked up here: the sender finds the account, issues the 30-minute link and writes the
    mail when it leaves (see ``_build_reset``). The caller commits.
    """
    mail = OutboxMail(recipient=typed_email[:254], subject="", body_text="", kind="reset_password",
                      message_id=new_message_id())
    db.add(mail)
    return mail


def _build_reset(engine, row: OutboxMail, written: bool = False) -> Message | None:
    """The reset mail of ``row`` with a fresh link, or None when the address has no active account.

    ``written``: the mail stays as written now (the demo mailbox shows it); otherwise a failed send makes
    a fresh link at the next try.
    """
    with writing_session(engine) as db:
        user = db.exec(select(User).where(User.email == row.recipient, User.active.is_(True))).first()
        if user is None:
            db.execute(update(OutboxMail).where(OutboxMail.id == row.id)
                       .values(status="dropped", locked_until=None, body_text="(aucun compte actif)"))
            db.commit()
            return None
        token = accounts.issue_token(db, user, "reset")  # supersedes an earlier link: only the newest works
        minutes = int(accounts.RESET_LIFETIME.total_seconds() // 60)
        subject = "Votre identifiant et le lien pour choisir un nouveau mot de passe"
        text, html = _render("reset_password", user=user, link=external_url("auth.reset", token=token), minutes=minutes)
        # What left is kept, as for every mail (without the link's token in another column: it is in the body).
        db.execute(update(OutboxMail).where(OutboxMail.id == row.id).values(
            subject=subject, body_text=text, body_html=html, **({"kind": ""} if written else {})))
        db.commit()
        return _message(subject, user.email, text, html, row.message_id)


def write_deferred(app) -> None:
    """Demo mailbox without an SMTP server: write the mails made at send time, so they can be read."""
    engine = app.extensions["ribambelle.engine"]
    with Session(engine) as db:
        rows = db.exec(select(OutboxMail).where(OutboxMail.kind != "", OutboxMail.status == "pending")).all()
    for row in rows:
        _build_reset(engine, row, written=True)


LINK_TOKEN = re.compile(r"(/mot-de-passe/nouveau/|/compte/login/confirmer/)([A-Za-z0-9_-]+)")


def _renew_link(engine, row: OutboxMail) -> OutboxMail | None:
    """A mail whose link expired while it waited gets a fresh link; None when the link was used (no mail)."""
    if not row.token_hash:
        return row
    with writing_session(engine) as db:
        token = db.exec(select(AuthToken).where(AuthToken.token_hash == row.token_hash)).first()
        if token is None or token.superseded_at is not None or token.expires_at > utcnow():
            return row  # still good, or replaced by a newer mail's link (or unknown): sent as written
        if token.used_at is not None:
            db.execute(update(OutboxMail).where(OutboxMail.id == row.id)
                       .values(status="dropped", locked_until=None, last_error="lien déjà utilisé"))
            db.commit()
            return None
        user = db.get(User, token.user_id)
        fresh = accounts.issue_token(db, user, token.purpose, new_email=token.new_email)

        def swap(text: str) -> str:
            return LINK_TOKEN.sub(lambda m: m.group(1) + fresh if accounts.token_hash(m.group(2)) == row.token_hash
                                  else m.group(0), text)

        values = dict(body_text=swap(row.body_text), body_html=swap(row.body_html), token_hash=accounts.token_hash(fresh))
        db.execute(update(OutboxMail).where(OutboxMail.id == row.id).values(**values))
        db.commit()
        return db.get(OutboxMail, row.id)


def _message(subject: str, recipient: str, text: str, html: str, message_id: str) -> Message:
    message = Message(subject=subject, recipients=[recipient], body=text, html=html or None)
    if message_id:
        message.msgId = message_id  # the outbox row's own: every try of this mail carries the same
    return message


def _due():
    now = utcnow()
    return or_(
        and_(OutboxMail.status == "pending", OutboxMail.next_attempt_at <= now),
        and_(OutboxMail.status == "sending", OutboxMail.locked_until < now),
    )


def _claim(engine, mail_id: int) -> OutboxMail | None:
    """Take the mail for this process, or None when another one took it first."""
    with writing_session(engine) as db:
        result = db.execute(
            update(OutboxMail)
            .where(OutboxMail.id == mail_id)
            .where(_due())
            .values(
                status="sending",
                locked_until=utcnow() + timedelta(seconds=CLAIM_SECONDS),
                attempts=OutboxMail.attempts + 1,
            )
        )
        if result.rowcount != 1:
            db.rollback()
            return None
        db.commit()
        return db.get(OutboxMail, mail_id)


def _finish(engine, mail_id: int, error: Exception | None) -> None:
    with writing_session(engine) as db:
        row = db.get(OutboxMail, mail_id)
        row.locked_until = None
        if error is None:
            row.status, row.sent_at, row.last_error = "sent", utcnow(), ""
        else:
            row.status = "pending"
            # 1, 2, 4 then every 5 minutes: a mail leaves soon after the server is back (a reset link
            # lives 30 minutes); `flask mail send --now` does not even wait for that.
            row.next_attempt_at = utcnow() + timedelta(minutes=min(2 ** (row.attempts - 1), MAX_BACKOFF_MINUTES))
            row.last_error = f"{type(error).__name__}: {error}"[:500]
        db.add(row)
        db.commit()


def deliver_pending(app, limit: int = 100) -> tuple[int, int]:
    """Send the mails that are due. Returns (sent, failed). Without MAIL_SERVER, sends nothing."""
    if not app.config.get("MAIL_SERVER"):
        return 0, 0

    engine = app.extensions["ribambelle.engine"]
    with Session(engine) as db:
        due = db.exec(select(OutboxMail.id).where(_due()).order_by(OutboxMail.id).limit(limit)).all()
    sent = failed = 0
    with app.app_context():
        for mail_id in due:
            row = _claim(engine, mail_id)
            if row is None:
                continue  # another process or thread took it
            if row.kind == "reset_password":
                message = _build_reset(engine, row)
                if message is None:
                    continue  # no account at that address: nothing to send
            else:
                row = _renew_link(engine, row)
                if row is None:
                    continue  # its link was used meanwhile: the mail has no purpose left
                message = _message(row.subject, row.recipient, row.body_text, row.body_html, row.message_id)
            try:
                with _smtp_timeout(app.config["MAIL_TIMEOUT"]):
                    flask_mail.send(message)
            except (smtplib.SMTPException, OSError) as exc:
                failed += 1
                app.logger.warning("Mail %s not sent (attempt %s): %s", row.id, row.attempts, exc)
                _finish(engine, mail_id, exc)
                continue
            sent += 1
            _finish(engine, mail_id, None)
    return sent, failed


def retry_now(app) -> None:
    """Make every waiting mail due at once (used when the SMTP server is known to be back)."""
    with Session(app.extensions["ribambelle.engine"]) as db:
        db.execute(
            update(OutboxMail).where(OutboxMail.status == "pending").values(next_attempt_at=utcnow())
        )
        db.commit()


class _smtp_timeout:
    """Bound how long a send may wait on an SMTP server that does not answer."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __enter__(self):
        self.previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(self.seconds)

    def __exit__(self, *exc):
        socket.setdefaulttimeout(self.previous)
        return False


def send_soon(app) -> None:
    """Try the outbox now, in the background, so the request that wrote a mail does not wait."""
    if not app.config.get("MAIL_SERVER") or app.config.get("OUTBOX_SYNC"):
        if app.config.get("OUTBOX_SYNC"):
            deliver_pending(app)
        return
    threading.Thread(target=_safe_deliver, args=(app,), daemon=True).start()


def _safe_deliver(app) -> None:
    try:
        deliver_pending(app)
    except Exception:  # the worker must never die; the next round retries
        app.logger.exception("Outbox delivery failed")


def start_worker(app) -> None:
    """A daemon thread per app process that sends due mails every OUTBOX_INTERVAL seconds."""
    interval = app.config.get("OUTBOX_INTERVAL") or 0
    if app.testing or interval <= 0:
        return

    def loop():
        stop = threading.Event()
        while not stop.wait(interval):
            _safe_deliver(app)

    threading.Thread(target=loop, name="ribambelle-outbox", daemon=True).start()
