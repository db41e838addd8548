"""Accounts, for admins: every login searchable, staff accounts with their role, new families, deactivation.

A new account has no password: its owner receives a single-use link (7 days) to choose one. A
deactivated account cannot log in, and its open sessions end at their next request.
"""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, or_
from sqlmodel import select

from blueprints.forms import NewFamilyForm, StaffAccountForm, strip_all
from models import Family, Guardian, User, get_db
from services import accounts, audit, outbox
from services.security import admin_required

bp = Blueprint("accounts", __name__, url_prefix="/admin")

PAGE_SIZE = 20
ROLES = {"parent": "Parent", "agent": "Agent", "admin": "Administrateur"}


def _invite(db, user: User, token: str) -> None:
    outbox.queue(db, user.email, f"Votre compte sur le portail famille de {current_app.config['TOWN_NAME']}",
                 "account_invite", user=user, link=url_for("auth.reset", token=token, _external=True))


@bp.get("/comptes")
@admin_required
def accounts_list():
    """Page: every login, searchable by address or name, filtered by role; 20 per page."""
    db = get_db()
    q = (request.args.get("q") or "").strip()[:100]
    role = request.args.get("role") if request.args.get("role") in ROLES else ""
    page = max(request.args.get("page", 1, type=int), 1)
    query = select(User)
    if q:
        like = f"%{q.lower()}%"
        query = query.where(or_(func.lower(User.email).like(like), func.lower(User.first_name).like(like),
                                func.lower(User.last_name).like(like)))
    if role:
        query = query.where(User.role == role)
    total = db.exec(select(func.count()).select_from(query.subquery())).one()
    rows = db.exec(query.order_by(User.role.desc(), User.email).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
    families = {f.id: f for f in db.exec(select(Family).where(Family.id.in_({u.family_id for u in rows if u.family_id})))}
    return render_template("admin/accounts.html", users=rows, families=families, q=q, role=role, roles=ROLES,
                           page=page, total=total, pages=max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1))


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
            user, token = accounts.create_account(db, current_app.extensions["ribambelle.hasher"], form.email.data,
                                                  form.role.data, form.first_name.data, form.last_name.data)
            _invite(db, user, token)
            audit.record(db, current_user.id, "create", "user", user.id,
                         f"Compte {ROLES[user.role].lower()} créé : {user.email}",
                         after={"email": user.email, "role": user.role})
            db.commit()
            outbox.send_soon(current_app._get_current_object())
            flash(f"Le compte de {user.display_name} est créé : un lien pour choisir son mot de passe lui est envoyé à {user.email}.",
                  "success")
            return redirect(url_for("accounts.accounts_list", q=user.email))
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
            family = Family(name=form.name.data)
            db.add(family)
            db.flush()
            db.add(Guardian(family_id=family.id, position=1, title=form.title.data or "", first_name=form.first_name.data,
                            last_name=form.last_name.data, phone_mobile=form.phone_mobile.data or "",
                            email=accounts.normalize_email(form.email.data)))
            user, token = accounts.create_account(db, current_app.extensions["ribambelle.hasher"], form.email.data,
                                                  "parent", form.first_name.data, form.last_name.data, family.id)
            _invite(db, user, token)
            audit.record(db, current_user.id, "create", "family", family.id,
                         f"Famille créée : {family.name}, compte {user.email}",
                         after={"famille": family.name, "email": user.email}, family_id=family.id)
            db.commit()
            outbox.send_soon(current_app._get_current_object())
            flash(f"Le dossier de la famille {family.name} est ouvert : {user.email} reçoit un lien pour choisir son mot de passe.",
                  "success")
            return redirect(url_for("staff.family", family_id=family.id))
    return render_template("admin/family_new.html", form=form), 422 if form.errors else 200


def _account(user_id: int) -> User:
    user = get_db().get(User, user_id)
    if user is None:
        abort(404)
    return user


@bp.post("/comptes/<int:user_id>/activation")
@admin_required
def set_active(user_id: int):
    """Action: deactivate an account (its sessions end) or reactivate it."""
    db = get_db()
    user = _account(user_id)
    active = request.form.get("actif") == "1"
    if user.id == current_user.id and not active:
        flash("Vous ne pouvez pas désactiver votre propre compte.", "error")
        return redirect(request.referrer or url_for("accounts.accounts_list"))
    if user.active != active:
        user.active = active
        if not active:
            user.session_version += 1  # every open session of the account ends now
        db.add(user)
        audit.record(db, current_user.id, "update", "user", user.id,
                     f"Compte {'réactivé' if active else 'désactivé'} : {user.email}",
                     {"actif": not active}, {"actif": active}, family_id=user.family_id)
        db.commit()
    flash(f"Le compte {user.email} est {'réactivé' if active else 'désactivé : il ne peut plus se connecter'}.", "success")
    return redirect(url_for("accounts.accounts_list", q=user.email))


@bp.post("/comptes/<int:user_id>/invitation")
@admin_required
def reinvite(user_id: int):
    """Action: send again the link to choose a password (the previous link stops working)."""
    db = get_db()
    user = _account(user_id)
    if not user.active:
        flash("Réactivez d'abord ce compte.", "error")
    else:
        _invite(db, user, accounts.issue_token(db, user, "invite"))
        audit.record(db, current_user.id, "update", "user", user.id, f"Lien de mot de passe renvoyé : {user.email}",
                     family_id=user.family_id)
        db.commit()
        outbox.send_soon(current_app._get_current_object())
        flash(f"Un nouveau lien est envoyé à {user.email} (valable 7 jours).", "success")
    return redirect(url_for("accounts.accounts_list", q=user.email))
