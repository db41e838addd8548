"""Demo only: the mails the portal wrote, readable in the browser (DEMO_MAILBOX)."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template
from sqlmodel import select

from db import get_db
from models import OutboxMail
from services import outbox

bp = Blueprint("demo", __name__, url_prefix="/demo")


@bp.before_request
def only_in_demo():
    if not current_app.config.get("DEMO_MAILBOX"):
        abort(404)


@bp.get("/courriels")
def mails():
    """Page: the latest mails written by the portal, newest first, links clickable."""
    if not current_app.config.get("MAIL_SERVER"):
        outbox.write_deferred(current_app)
    rows = get_db().exec(select(OutboxMail).where(OutboxMail.status != "dropped")
                         .order_by(OutboxMail.id.desc()).limit(50)).all()
    return render_template("demo/mails.html", mails=rows)


@bp.get("/courriels/<int:mail_id>")
def mail(mail_id: int):
    """Page: one mail."""
    row = get_db().get(OutboxMail, mail_id)
    if row is None:
        abort(404)
    return render_template("demo/mail.html", mail=row)
