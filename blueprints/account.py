"""The family space "Mon compte famille" and what a parent changes in it (guide sections 3 to 6)."""
from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, current_app, flash, redirect, render_template, session, url_for
from flask_login import current_user

from blueprints.forms import ChangeLoginForm, ChangePasswordForm, FamilyForm, strip_all
from blueprints.web import parent_required
from db import get_db
from models import User, utcnow
from services import accounts, billing, certificates, enrolments, family_space, outbox, passwords, planning
from services import family as family_service
from services.calendar import paris_today
from services.links import external_url
from services.security import log_event, start_session

bp = Blueprint("account", __name__, url_prefix="/compte")


@bp.get("/")
@parent_required
def home():
    """Page: the four blocks of the family space ("/" sends a logged-in parent here), in three statements."""
    db = get_db()
    file = family_space.family_file(db, current_user.family_id, current_user.id, utcnow())
    if file is None:
        abort(404)
    account = family_space.family_account(db, file.family.id)
    today = paris_today(utcnow())
    requests = enrolments.family_requests(db, file.family.id) if file.enrolment_requests else []
    return render_template(
        "account/home.html",
        file=file,
        family=file.family,
        reservations=family_space.family_reservations(db, file.family.id),
        children_by_id={c.id: c for c in file.children},
        reservation_states=planning.RESERVATION_STATES,
        account=account,
        today=today,
        enrolment_requests=requests, enrolment_states=enrolments.STATES,
        establishment_names=enrolments.establishment_names(db, requests),
        tax_year=next((y for y in certificates.tax_years(file.children, today) if y < today.year), None),
        invoice_states=billing.INVOICE_STATES, payment_states=billing.PAYMENT_STATES,
        payment_methods=billing.PAYMENT_METHODS, invoice_numbers={i.id: i.number for i in account.invoices},
    )


@bp.route("/famille/modifier", methods=["GET", "POST"])
@parent_required
def edit_family():
    """Page: "Modifier les informations de la famille"; the change waits for an agent."""
    db = get_db()
    fam = family_service.family_of(db, current_user)
    pending = family_service.pending_family_request(db, fam.id)
    form = FamilyForm()
    if not form.is_submitted():
        _fill_family_form(form, pending.after if pending else family_service.family_snapshot(fam))
    if form.validate_on_submit():
        strip_all(form)
        req = family_service.request_family_change(db, current_user, fam, _family_payload(form))
        if req is None:
            flash("Aucune modification à enregistrer : les informations sont celles du dossier.", "info")
        else:
            flash(
                "Vos modifications sont enregistrées. Elles seront soumises à la validation "
                "des responsables de pôle.",
                "success",
            )
        return redirect(url_for("account.home"))
    return render_template("account/edit_family.html", form=form, pending=pending)


def _fill_family_form(form: FamilyForm, data: dict) -> None:
    for name, value in data["family"].items():
        if name == "qf_valid_until":
            value = date.fromisoformat(value) if value else None
        if name == "payer_position":
            value = str(value)
        form[name].data = value
    for sub, values in ((form.guardian1.form, data["guardians"][0]), (form.guardian2.form, data["guardians"][1])):
        for name, value in (values or {}).items():
            sub[name].data = value


def _family_payload(form: FamilyForm) -> dict:
    def guardian(sub):
        if sub.is_empty():
            return None
        return {name: (sub[name].data or "") for name in family_service.GUARDIAN_FIELDS}

    fam = {name: form[name].data for name in family_service.FAMILY_FIELDS}
    fam["qf_valid_until"] = fam["qf_valid_until"].isoformat() if fam["qf_valid_until"] else None
    fam["payer_position"] = int(fam["payer_position"])
    for name in ("address_extra", "phone_home", "allowance_scheme", "allowance_number"):
        fam[name] = fam[name] or ""
    return {"family": fam, "guardians": [guardian(form.guardian1.form), guardian(form.guardian2.form)]}


@bp.route("/login/modifier", methods=["GET", "POST"])
@parent_required
def change_login():
    """Page: "Modifier mon login"; the new address gets a confirmation link valid 48 hours."""
    db = get_db()
    form = ChangeLoginForm()
    if form.validate_on_submit():
        hasher = current_app.extensions["ribambelle.hasher"]
        new_email = accounts.normalize_email(form.email.data)
        user = db.get(User, current_user.id)
        if not passwords.verify(hasher, user.password_hash, form.current.data):
            form.current.errors.append("Mot de passe incorrect.")
        elif new_email == current_user.email:
            form.email.errors.append("C'est déjà votre identifiant actuel.")
        elif accounts.email_taken(db, new_email):
            form.email.errors.append("Cette adresse mail est déjà utilisée par un autre compte.")
        else:
            token = accounts.issue_token(db, user, "email", new_email=new_email)
            link = external_url("account.confirm_login", token=token)
            outbox.queue(db, new_email, "Confirmez votre nouvelle adresse mail", "confirm_login",
                         link_token=token, user=user, new_email=new_email, link=link)
            outbox.queue(db, user.email, "Demande de changement de votre identifiant", "login_change_notice",
                         user=user, new_email=new_email)
            db.commit()
            outbox.send_soon(current_app._get_current_object())
            log_event("login.change_requested", user.id)
            flash(
                f"Votre demande de changement d'adresse mail est prise en charge. Un courriel a été "
                f"envoyé à {new_email} : cliquez sur le lien qu'il contient pour confirmer. "
                "D'ici là, votre identifiant reste inchangé.",
                "success",
            )
            return redirect(url_for("account.home"))
    return render_template("account/change_login.html", form=form)


@bp.get("/login/confirmer/<token>")
def confirm_login(token: str):
    """The link of the mail: the new address becomes the login, then the family space opens."""
    db = get_db()
    row, problem = accounts.find_token(db, token, "email")
    if problem:
        status = 404 if problem == "unknown" else 410
        return render_template("auth/link_problem.html", message=accounts.TOKEN_PROBLEMS[problem]), status
    user = db.get(User, row.user_id)
    if accounts.email_taken(db, row.new_email, except_user_id=user.id):
        return render_template(
            "auth/link_problem.html",
            message="Cette adresse mail est désormais utilisée par un autre compte : votre identifiant reste inchangé.",
        ), 409
    if not accounts.use_token(db, row):
        db.rollback()
        return render_template("auth/link_problem.html", message=accounts.TOKEN_PROBLEMS["used"]), 410
    user.email = row.new_email
    db.add(user)
    db.commit()
    log_event("login.changed", user.id)
    message = f"Votre nouvelle adresse mail {user.email} est confirmée : c'est désormais votre identifiant."
    if current_user.is_authenticated and current_user.id == user.id:
        flash(message, "success")
        return redirect(url_for("account.home"))
    session["login_hint"] = user.email  # opened in another browser: the login page has it filled in
    flash(message + " Connectez-vous avec cette adresse.", "success")
    return redirect(url_for("auth.login"))


@bp.route("/mot-de-passe/modifier", methods=["GET", "POST"])
@parent_required
def change_password():
    """Page: "Modifier mon mot de passe"; every other session of the account ends."""
    db = get_db()
    form = ChangePasswordForm()
    if form.validate_on_submit():
        hasher = current_app.extensions["ribambelle.hasher"]
        user = db.get(User, current_user.id)
        if not passwords.verify(hasher, user.password_hash, form.current.data):
            form.current.errors.append("Mot de passe actuel incorrect.")
        else:
            issue = accounts.password_problem(db, hasher, user, form.password.data, current_app.config["TOWN_NAME"])
            if issue:
                form.password.errors.append(issue)
            else:
                accounts.set_password(db, hasher, user, form.password.data)
                db.commit()
                log_event("password.changed", user.id)
                start_session(user)
                flash("Votre mot de passe a été modifié.", "success")
                return redirect(url_for("account.home"))
    return render_template("account/change_password.html", form=form)
