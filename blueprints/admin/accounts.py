"""Accounts, for admins: every login searchable, staff accounts with their role, new families, deactivation.

A new account has no password: its owner receives a single-use link (7 days) to choose one. A
deactivated account cannot log in, and its open sessions end at their next request.
"""
from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlmodel import select

from blueprints.admin import bp
from blueprints.forms import NewFamilyForm, StaffAccountForm, strip_all
from blueprints.listing import matches, paginate, search_text
from blueprints.web import admin_required
from db import get_db, get_or_404
from models import Family, User
from services import accounts, audit, outbox
from services import family as family_service
from services.security import log_event

PAGE_SIZE = 20
ROLES = {"parent": "Parent", "agent": "Agent", "admin": "Administrateur"}


def _invite(db, user: User, token: str) -> None:
    outbox.queue_invite(db, user, token, current_app.config["TOWN_NAME"])


def _open_account(db, form, role: str, family_id: int | None = None) -> User:
    """A new login for the form's address and names, and the mail with its link to choose a password."""
    user, token = accounts.create_account(db, current_app.extensions["ribambelle.hasher"], form.email.data, role,
                                          form.first_name.data, form.last_name.data, family_id)
    _invite(db, user, token)
    return user


def _saved(db, message: str, target: str):
    """Commit, let the mail leave at once, and go to ``target`` with ``message``."""
    db.commit()
    outbox.send_soon(current_app._get_current_object())
    flash(message, "success")
    return redirect(target)


@bp.get("/comptes")
@admin_required
def accounts_list():
    """Page: every login, searchable by address or name, filtered by role; 20 per page."""
    db = get_db()
    q = search_text()
    role = request.args.get("role") if request.args.get("role") in ROLES else ""
    query = select(User)
    if q:
        query = query.where(matches(q, User.email, User.first_name, User.last_name))
    if role:
        query = query.where(User.role == role)
    page = paginate(db, query, User.role.desc(), User.email, size=PAGE_SIZE)
    families = {f.id: f for f in db.exec(select(Family).where(Family.id.in_({u.family_id for u in page.rows if u.family_id})))}
    return render_template("admin/accounts.html", page=page, families=families, q=q, role=role, roles=ROLES)


@bp.route("/comptes/nouveau", methods=["GET", "POST"])
@admin_required
def new_staff():
    """Page: create an agent or admin account; its owner gets the link to choose a password."""
    form = StaffAccountForm()
    if form.validate_on_submit():
        strip_all(form)
        db = get_db()
        if accounts.email_taken(db, form.email.data):
            form.email.errors.append("Un compte utilise déjà cette adresse.")
        else:
            user = _open_account(db, form, form.role.data)
            log_event("account.created", target=user.email, role=user.role)
            audit.record(db, current_user.id, "create", "user", user.id,
                         f"Compte {ROLES[user.role].lower()} créé : {user.email}",
                         after={"email": user.email, "role": user.role})
            return _saved(db, f"Le compte de {user.display_name} est créé : un lien pour choisir son mot de passe "
                              f"lui est envoyé à {user.email}.", url_for("admin.accounts_list", q=user.email))
    return render_template("admin/account_new.html", form=form), 422 if form.errors else 200


@bp.route("/familles/nouvelle", methods=["GET", "POST"])
@admin_required
def new_family():
    """Page: open a family file with its first parent account (the parent completes the file after)."""
    form = NewFamilyForm()
    if form.validate_on_submit():
        strip_all(form)
        db = get_db()
        if accounts.email_taken(db, form.email.data):
            form.email.errors.append("Un compte utilise déjà cette adresse : cherchez la famille dans « Familles ».")
        else:
            guardian = dict(title=form.title.data or "", first_name=form.first_name.data, last_name=form.last_name.data,
                            phone_mobile=form.phone_mobile.data or "")
            family, user = family_service.open_family(db, current_app.extensions["ribambelle.hasher"], current_user.id,
                                                      form.name.data, guardian, form.email.data,
                                                      current_app.config["TOWN_NAME"])
            return _saved(db, f"Le dossier de la famille {family.name} est ouvert : {user.email} reçoit un lien pour "
                              "choisir son mot de passe.", url_for("staff.family", family_id=family.id))
    return render_template("admin/family_new.html", form=form), 422 if form.errors else 200


@bp.post("/comptes/<int:user_id>/activation")
@admin_required
def set_active(user_id: int):
    """Action: deactivate an account (its sessions end) or reactivate it."""
    db = get_db()
    user = get_or_404(User, user_id)
    active = request.form.get("actif") == "1"
    if user.id == current_user.id and not active:
        flash("Vous ne pouvez pas désactiver votre propre compte.", "error")
        return redirect(request.referrer or url_for("admin.accounts_list"))
    if user.active != active:
        user.active = active
        if not active:
            user.session_version += 1  # every open session of the account ends now
        db.add(user)
        log_event("account.reactivated" if active else "account.deactivated", target=user.email, role=user.role)
        audit.record(db, current_user.id, "update", "user", user.id,
                     f"Compte {'réactivé' if active else 'désactivé'} : {user.email}",
                     {"actif": not active}, {"actif": active}, family_id=user.family_id)
        db.commit()
    flash(f"Le compte {user.email} est {'réactivé' if active else 'désactivé : il ne peut plus se connecter'}.", "success")
    return redirect(url_for("admin.accounts_list", q=user.email))


@bp.post("/comptes/<int:user_id>/invitation")
@admin_required
def reinvite(user_id: int):
    """Action: send again the link to choose a password (the previous link stops working)."""
    db = get_db()
    user = get_or_404(User, user_id)
    if not user.active:
        flash("Réactivez d'abord ce compte.", "error")
    else:
        _invite(db, user, accounts.issue_token(db, user, "invite"))
        log_event("account.invite_sent", target=user.email)
        audit.record(db, current_user.id, "update", "user", user.id, f"Lien de mot de passe renvoyé : {user.email}",
                     family_id=user.family_id)
        return _saved(db, f"Un nouveau lien est envoyé à {user.email} (valable 7 jours).",
                      url_for("admin.accounts_list", q=user.email))
    return redirect(url_for("admin.accounts_list", q=user.email))
