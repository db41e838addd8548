"""The back office for agents: the queue of family and child changes to validate."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from blueprints.forms import DecisionForm, strip_all
from models import ChangeRequest, Family, User, get_db
from services import family as family_service, outbox
from services.security import staff_required

bp = Blueprint("staff", __name__, url_prefix="/agent")


@bp.after_request
def no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/")
@staff_required
def queue():
    """Page: every change waiting for validation, oldest first."""
    db = get_db()
    requests = family_service.pending_requests(db)
    families = {f.id: f for f in (db.get(Family, r.family_id) for r in requests)}
    return render_template("staff/queue.html", requests=requests, families=families)


def _request_or_404(request_id: int) -> ChangeRequest:
    req = get_db().get(ChangeRequest, request_id)
    if req is None:
        abort(404)
    return req


@bp.route("/demandes/<int:request_id>", methods=["GET", "POST"])
@staff_required
def decide(request_id: int):
    """Page: one change as before/after, with "Valider" and "Refuser" and a message to the parent."""
    db = get_db()
    req = _request_or_404(request_id)
    form = DecisionForm()
    if form.validate_on_submit():
        strip_all(form)
        agent = db.get(User, current_user.id)
        action = "refuse" if request.form.get("action") == "refuse" else "validate"
        if req.status != "pending":
            flash("Cette demande a déjà été traitée.", "info")
            return redirect(url_for("staff.queue"))
        if action == "refuse":
            if not form.message.data:
                form.message.errors.append("Pour refuser, écrivez au parent ce qui ne va pas.")
            else:
                family_service.refuse(db, agent, req, form.message.data)
                outbox.send_soon(current_app._get_current_object())
                flash("Demande refusée ; la famille est prévenue par courriel.", "success")
                return redirect(url_for("staff.queue"))
        else:
            family_service.validate(db, agent, req, form.message.data or "")
            outbox.send_soon(current_app._get_current_object())
            flash("Demande validée : le dossier est à jour et la famille est prévenue par courriel.", "success")
            return redirect(url_for("staff.queue"))
    family = db.get(Family, req.family_id)
    return render_template(
        "staff/decide.html",
        req=req,
        family=family,
        form=form,
        rows=family_service.diff_rows(req),
        requester=db.get(User, req.requested_by_id),
    )
