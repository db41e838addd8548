"""Shared custody for agents (/foyers/): a child's households, linking a second one (an existing family,
or a new file whose first parent is invited by mail) and ending the link."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlmodel import select

from blueprints.forms import NewFamilyForm, strip_all
from blueprints.listing import family_matches, search_text
from blueprints.web import staff_required
from db import get_db, get_or_404
from models import Child, Family
from services import accounts, households, outbox

bp = Blueprint("households", __name__, url_prefix="/foyers")

FOUND = 10  # families shown for a search


@bp.get("/enfant/<int:child_id>")
@staff_required
def child_households(child_id: int, form: NewFamilyForm | None = None):
    """Page: the child's households (its file's, and the second one of a shared custody), a search to
    link an existing family, and the form that opens a new one."""
    db = get_db()
    child = get_or_404(Child, child_id)
    second = households.second_household(db, child)
    q = search_text()
    found = []
    if q and second is None:
        found = db.exec(select(Family).where(Family.id != child.family_id, family_matches(q, children=False))
                        .order_by(Family.name).limit(FOUND)).all()
    if form is None:
        form = NewFamilyForm(prefix="foyer")
        form.name.data = form.name.data or child.last_name
    return render_template("households/child.html", child=child, first=db.get(Family, child.family_id),
                           second=second, q=q, found=found, form=form), 422 if form.errors else 200


def _back(child: Child, message: str, category: str = "success"):
    """Back to the child's households with what happened (a done change may have mails to send)."""
    if category == "success":
        outbox.send_soon(current_app._get_current_object())
    flash(message, category)
    return redirect(url_for("households.child_households", child_id=child.id))


@bp.post("/enfant/<int:child_id>/rattacher")
@staff_required
def link(child_id: int):
    db = get_db()
    child = get_or_404(Child, child_id)
    family = get_or_404(Family, request.form.get("famille", type=int) or 0)
    try:
        households.link(db, current_user.id, child, family)
    except households.HouseholdError as exc:
        return _back(child, str(exc), "error")
    return _back(child, f"{child.first_name} est rattaché(e) aussi à la famille {family.name} : "
                        "chaque foyer réserve et paie ses propres jours.")


@bp.post("/enfant/<int:child_id>/nouveau")
@staff_required
def link_new(child_id: int):
    db = get_db()
    child = get_or_404(Child, child_id)
    form = NewFamilyForm(prefix="foyer")
    if not form.validate_on_submit():
        return child_households(child.id, form)
    strip_all(form)
    if accounts.email_taken(db, form.email.data):
        form.email.errors.append("Un compte utilise déjà cette adresse : cherchez cette famille ci-dessus et "
                                 "rattachez-la.")
        return child_households(child.id, form)
    guardian = dict(title=form.title.data or "", first_name=form.first_name.data, last_name=form.last_name.data,
                    phone_mobile=form.phone_mobile.data or "")
    try:
        family = households.link_new(db, current_app.extensions["ribambelle.hasher"], current_user.id, child,
                                     form.name.data, guardian, form.email.data, current_app.config["TOWN_NAME"])
    except households.HouseholdError as exc:
        return _back(child, str(exc), "error")
    return _back(child, f"Le dossier de la famille {family.name} est ouvert et {child.first_name} y est rattaché(e) : "
                        f"{form.email.data} reçoit un lien pour choisir son mot de passe.")


@bp.post("/enfant/<int:child_id>/retirer/<int:family_id>")
@staff_required
def unlink(child_id: int, family_id: int):
    db = get_db()
    child = get_or_404(Child, child_id)
    family = get_or_404(Family, family_id)
    try:
        households.unlink(db, current_user.id, child, family)
    except households.HouseholdError as exc:
        return _back(child, str(exc), "error")
    return _back(child, f"{child.first_name} n'est plus rattaché(e) à la famille {family.name}.")
