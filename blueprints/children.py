"""Block "Mes enfants": add, view and modify a child; changes wait for an agent (issue 2, journey 8)."""
from __future__ import annotations

from datetime import date
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from blueprints.forms import ChildForm, strip_all
from blueprints.web import parent_required
from db import get_db
from models import ChangeRequest, Child, utcnow
from services import calendar_feed, documents
from services import family as family_service
from services.calendar import paris_today
from services.links import external_url
from services.security import log_event

bp = Blueprint("children", __name__, url_prefix="/enfants")


def _payload(form: ChildForm) -> dict:
    data = {name: form[name].data for name in family_service.CHILD_FIELDS}
    data["birth_date"] = data["birth_date"].isoformat()
    data["has_pai"] = bool(data["has_pai"])
    data["image_rights"] = bool(data["image_rights"])
    for name, value in data.items():
        if value is None:
            data[name] = ""
    return data


def _fill(form: ChildForm, data: dict) -> None:
    for name, value in data.items():
        if name == "birth_date":
            value = date.fromisoformat(value) if value else None
        form[name].data = value


@bp.route("/ajouter", methods=["GET", "POST"])
@parent_required
def add():
    """Page: the form for a new child, filed for an agent's validation."""
    db = get_db()
    fam = family_service.family_of(db, current_user)
    form = ChildForm()
    if not form.is_submitted():
        form.last_name.data = fam.name
    if form.validate_on_submit():
        strip_all(form)
        family_service.request_child_change(db, current_user, fam, None, _payload(form))
        flash(
            f"La fiche de {form.first_name.data} est enregistrée. Elle sera soumise à la validation "
            "des responsables de pôle.",
            "success",
        )
        return redirect(url_for("account.home", _anchor="mes-enfants"))
    return render_template("children/edit.html", form=form, child=None, pending=None)


@bp.get("/<int:child_id>")
@parent_required
def view(child_id: int):
    """Page: a child's file, with the change waiting for validation if there is one."""
    db = get_db()
    child = family_service.child_of_family(db, current_user.family_id, child_id)
    if child is None:
        abort(404)
    pending = family_service.pending_child_request(db, child.id, current_user.family_id)
    link = family_service.household_link(db, child, current_user.family_id)
    snapshot = family_service.child_snapshot(child, link)
    shared = link is not None or bool(child.other_households)
    rows = [{"label": label, "value": family_service.display_value(name, snapshot[name])}
            for name, label in family_service.CHILD_FIELDS.items()]
    feed_url = external_url("children.calendar", child_id=child.id, foyer=link.family_id if link else None,
                            token=calendar_feed.token(current_app.config["SECRET_KEY"], child, link))
    papers = [n for n in documents.needed(db, current_user.family_id, paris_today(utcnow())) if n.child and n.child.id == child.id]
    return render_template("children/view.html", child=child, rows=rows, pending=pending, feed_url=feed_url, shared=shared,
                           papers=papers, paper_states=documents.STATES,
                           webcal_url="webcal://" + feed_url.split("://", 1)[1])


@bp.get("/<int:child_id>/agenda/<token>.ics")
def calendar(child_id: int, token: str):
    """The child's private calendar feed (ICS), for the parent's calendar app: no login, the token is the key."""
    db = get_db()
    child = db.get(Child, child_id)
    household = request.args.get("foyer", type=int)  # a second household's link (shared custody)
    link = family_service.household_link(db, child, household) if child and household else None
    if (household and link is None) or not calendar_feed.valid(current_app.config["SECRET_KEY"], child, token, link):
        abort(404)
    host = urlsplit(current_app.config["BASE_URL"]).hostname
    response = make_response(calendar_feed.feed(db, child, host, link.family_id if link else None))
    response.mimetype = "text/calendar"
    response.headers["Content-Disposition"] = f'inline; filename="planning-{child.id}.ics"'
    response.headers["Cache-Control"] = "private, no-cache"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.post("/<int:child_id>/agenda/renouveler")
@parent_required
def renew_calendar(child_id: int):
    """Action: "Renouveler le lien": a new link; the old one stops working (a phone lost, a link shared)."""
    db = get_db()
    child = family_service.child_of_family(db, current_user.family_id, child_id)
    if child is None:
        abort(404)
    link = family_service.household_link(db, child, current_user.family_id)
    renewed = link or child  # each household renews its own link
    renewed.calendar_version += 1
    db.add(renewed)
    db.commit()
    log_event("calendar.renewed", current_user.id, child=child.id)
    flash("Nouveau lien d'agenda créé : l'ancien ne fonctionne plus. Ajoutez ce nouveau lien à votre agenda.", "success")
    return redirect(url_for("children.view", child_id=child.id) + "#agenda")


@bp.route("/<int:child_id>/modifier", methods=["GET", "POST"])
@parent_required
def edit(child_id: int):
    """Page: modify a child's file; the change waits for an agent."""
    db = get_db()
    fam = family_service.family_of(db, current_user)
    child = family_service.child_of_family(db, fam.id, child_id)
    if child is None:
        abort(404)
    pending = family_service.pending_child_request(db, child.id, fam.id)
    form = ChildForm()
    if not form.is_submitted():
        _fill(form, pending.after if pending else family_service.child_snapshot(
            child, family_service.household_link(db, child, fam.id)))
    if form.validate_on_submit():
        strip_all(form)
        req = family_service.request_child_change(db, current_user, fam, child, _payload(form))
        if req is None:
            flash("Aucune modification à enregistrer : la fiche est celle du dossier.", "info")
        else:
            flash(
                f"Les modifications de la fiche de {child.first_name} sont enregistrées. Elles seront "
                "soumises à la validation des responsables de pôle.",
                "success",
            )
        return redirect(url_for("children.view", child_id=child.id))
    return render_template("children/edit.html", form=form, child=child, pending=pending)


@bp.get("/demande/<int:request_id>")
@parent_required
def new_child_request(request_id: int):
    """Page: a new child waiting for validation, as the parent filed it."""
    db = get_db()
    req = db.get(ChangeRequest, request_id)
    if req is None or req.family_id != current_user.family_id or req.target != "child":
        abort(404)
    rows = [
        {"label": label, "value": family_service.display_value(name, req.after.get(name))}
        for name, label in family_service.CHILD_FIELDS.items()
    ]
    return render_template("children/request.html", req=req, rows=rows)

