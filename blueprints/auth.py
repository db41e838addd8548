"""Logging in and out, and getting back in with a forgotten password (guide sections 1 and 2)."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, logout_user
from sqlmodel import select

from blueprints.forms import ForgotForm, LoginForm, NewPasswordForm
from models import User, get_db
from services import accounts, outbox, passwords, ratelimit
from services.security import start_session

bp = Blueprint("auth", __name__)

GENERIC_FAILURE = "Identifiant ou mot de passe incorrect."


@bp.get("/healthz")
def healthz():
    """Liveness: answers without touching the database."""
    return {"status": "ok"}


@bp.route("/", methods=["GET", "POST"])
def login():
    """The login page for a visitor; the family space (or the back office) once logged in."""
    if current_user.is_authenticated:
        if current_user.is_staff:
            return redirect(url_for("staff.queue"))
        from blueprints.account import home

        return home()

    form = LoginForm()
    if form.validate_on_submit():
        wait = ratelimit.check("login", request.remote_addr or "")
        if wait:  # many logins from one address: credential stuffing, whatever the accounts tried
            form.form_errors.append("Trop de tentatives de connexion depuis votre connexion internet. Patientez "
                                    f"{ratelimit.wait_words(wait)} avant de réessayer.")
            return render_template("auth/login.html", form=form), 429, {"Retry-After": str(wait)}
        db = get_db()
        result = accounts.authenticate(
            db, current_app.extensions["ribambelle.hasher"], form.email.data, form.password.data
        )
        if result.user:
            start_session(result.user)
            current_app.logger.info("Login of user %s", result.user.id)
            return redirect(_safe_next(request.args.get("next")) or url_for("auth.login"))
        if result.wait_seconds:
            form.form_errors.append(
                "Trop de tentatives de connexion. Pour protéger votre compte, patientez "
                f"{_duration(result.wait_seconds)} avant de réessayer."
            )
        else:
            form.form_errors.append(GENERIC_FAILURE)
    return render_template("auth/login.html", form=form)


@bp.get("/accessibilite")
def accessibility():
    """Page: the accessibility statement, with the results of the project's own accessibility tests."""
    from datetime import datetime

    from services import accessibility as a11y

    results = a11y.load_results()
    checked_at = datetime.fromisoformat(results["checked_at"]) if results else None
    pages = sorted((results or {}).get("pages", {}).items())
    failing = [name for name, r in pages if r["violations"]]
    return render_template("auth/accessibility.html", methods=a11y.METHODS, limits=a11y.KNOWN_LIMITS,
                           pages=pages, failing=failing, checked_at=checked_at)


@bp.post("/session/prolonger")
def extend_session():
    """Keep the session alive (the warning's button); htmx gets 204, a plain form goes back."""
    from flask import session

    from services.security import _is_htmx

    if not current_user.is_authenticated:
        from app import login_manager

        return login_manager.unauthorized()
    import time

    session["seen_at"] = int(time.time())
    if _is_htmx():
        return "", 204, {"HX-Trigger": "ribambelle:session-extended"}
    return redirect(request.referrer if request.referrer and request.referrer.startswith(request.host_url)
                    else url_for("auth.login"))


@bp.post("/deconnexion")
def logout():
    """End the session and come back to the login page."""
    logout_user()
    from flask import session

    session.clear()
    flash("Vous êtes déconnecté(e).", "success")
    return redirect(url_for("auth.login"))


@bp.route("/identifiant-oublie", methods=["GET", "POST"])
def forgot():
    """Ask for the login and a link to choose a new password; answers the same for any address."""
    form = ForgotForm()
    if form.validate_on_submit():
        wait = ratelimit.check("forgot_ip", request.remote_addr or "")
        if wait:
            form.form_errors.append("Trop de demandes depuis votre connexion internet. Patientez "
                                    f"{ratelimit.wait_words(wait)} avant de réessayer.")
            return render_template("auth/forgot.html", form=form), 429, {"Retry-After": str(wait)}
        db = get_db()
        email = accounts.normalize_email(form.email.data)
        user = db.exec(select(User).where(User.email == email)).first()
        # A few mails per login and hour at most; the answer reads the same either way.
        if user is not None and user.active and not ratelimit.check("forgot_email", email):
            token = accounts.issue_token(db, user, "reset")
            outbox.queue(
                db,
                user.email,
                "Votre identifiant et le lien pour choisir un nouveau mot de passe",
                "reset_password",
                user=user,
                link=url_for("auth.reset", token=token, _external=True),
                minutes=int(accounts.RESET_LIFETIME.total_seconds() // 60),
            )
            db.commit()
            outbox.send_soon(current_app._get_current_object())
        return render_template("auth/forgot_sent.html")
    return render_template("auth/forgot.html", form=form)


@bp.route("/mot-de-passe/nouveau/<token>", methods=["GET", "POST"])
def reset(token: str):
    """Choose a new password from the link of the mail (single use, 30 minutes)."""
    db = get_db()
    row, problem = accounts.find_token(db, token, ("reset", "invite"))  # invite: a new account's first password
    if problem:
        status = 404 if problem == "unknown" else 410
        return render_template("auth/link_problem.html", message=accounts.TOKEN_PROBLEMS[problem]), status
    user = db.get(User, row.user_id)
    form = NewPasswordForm()
    if form.validate_on_submit():
        issue = passwords.new_password_problem(form.password.data, user.email)
        if issue:
            form.password.errors.append(issue)
        elif accounts.use_token(db, row):
            accounts.set_password(db, current_app.extensions["ribambelle.hasher"], user, form.password.data)
            db.commit()
            start_session(user)
            flash("Votre nouveau mot de passe est enregistré. Vous êtes connecté(e).", "success")
            return redirect(url_for("auth.login"))
        else:
            db.rollback()
            return render_template("auth/link_problem.html", message=accounts.TOKEN_PROBLEMS["used"]), 410
    return render_template("auth/reset.html", form=form, user=user, first=row.purpose == "invite")


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site: never send a parent elsewhere after login."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def _duration(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} secondes"
    minutes = (seconds + 59) // 60
    return f"{minutes} minute{'s' if minutes > 1 else ''}"
