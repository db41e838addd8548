"""Logging in and out, and getting back in with a forgotten password (guide sections 1 and 2)."""
from __future__ import annotations

import time
from datetime import datetime
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user
from sqlalchemy import text

from blueprints.forms import ForgotForm, LoginForm, NewPasswordForm
from blueprints.web import is_htmx
from db import get_db
from extensions import login_manager
from models import User
from services import accessibility as a11y
from services import accounts, outbox, ratelimit
from services.security import end_every_session, end_session, log_event, start_session

bp = Blueprint("auth", __name__)

GENERIC_FAILURE = "Identifiant ou mot de passe incorrect."


@bp.get("/healthz")
def healthz():
    """Liveness: answers without touching the database."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    """Readiness, for the load balancer: this process can reach the database."""
    try:
        get_db().exec(text("SELECT 1")).one()
    except Exception as exc:
        current_app.logger.warning("Database unreachable: %s", exc)
        return {"status": "database unavailable"}, 503
    return {"status": "ok"}


@bp.route("/", methods=["GET", "POST"])
def login():
    """The login page for a visitor; a logged-in one is sent to the family space (or the back office)."""
    if current_user.is_authenticated:
        return redirect(url_for("staff.queue" if current_user.is_staff else "account.home"))

    form = LoginForm()
    if request.method == "GET" and session.get("login_hint"):
        form.email.data = session.pop("login_hint")  # after a new password or a login change: the login filled in
    if form.validate_on_submit():
        address = request.remote_addr or ""
        wait = ratelimit.blocked("login_failures", address)
        if wait:  # many failed logins from one address: credential stuffing, whatever the accounts tried
            log_event("login.throttled", login=form.email.data[:254], scope="address")
            form.form_errors.append("Trop de tentatives de connexion depuis votre connexion internet. Patientez "
                                    f"{ratelimit.wait_words(wait)} avant de réessayer.")
            return render_template("auth/login.html", form=form), 429, {"Retry-After": str(wait)}
        db = get_db()
        result = accounts.authenticate(
            db, current_app.extensions["ribambelle.hasher"], form.email.data, form.password.data
        )
        if result.user:
            start_session(result.user)
            log_event("login.success", result.user.id, role=result.user.role)
            home = "staff.queue" if result.user.is_staff else "account.home"
            return redirect(_safe_next(request.args.get("next")) or url_for(home))
        ratelimit.check("login_failures", address)  # only failures count: a school's parents share one address
        log_event("login.throttled" if result.wait_seconds else "login.failure", login=form.email.data[:254],
                  **({"scope": "login"} if result.wait_seconds else {}))
        if result.wait_seconds:
            form.form_errors.append(
                "Trop de tentatives de connexion. Pour protéger votre compte, patientez "
                f"{ratelimit.wait_words(result.wait_seconds)} avant de réessayer."
            )
        else:
            form.form_errors.append(GENERIC_FAILURE)
    return render_template("auth/login.html", form=form)


@bp.get("/accessibilite")
def accessibility():
    """Page: the accessibility statement, from the audit grid and the project's published test run."""
    results = a11y.load_results()
    checked_at = datetime.fromisoformat(results["checked_at"]) if results else None
    pages = sorted((results or {}).get("pages", {}).items())
    failing = [name for name, r in pages if r["violations"]]
    return render_template("auth/accessibility.html", methods=a11y.methods(results), limits=a11y.KNOWN_LIMITS,
                           pages=pages, failing=failing, checked_at=checked_at, audit=a11y.audit(results),
                           grid_date=a11y.GRID_DATE, grid_by=a11y.GRID_BY, words=a11y.STATUS_WORDS,
                           axe_version=a11y.axe_version())


@bp.post("/session/prolonger")
def extend_session():
    """Keep the session alive (the warning's button); htmx gets 204, a plain form goes back."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()

    session["seen_at"] = int(time.time())
    if is_htmx():
        return "", 204, {"HX-Trigger": "ribambelle:session-extended"}
    return redirect(request.referrer if request.referrer and request.referrer.startswith(request.host_url)
                    else url_for("auth.login"))


@bp.post("/deconnexion")
def logout():
    """End the session, on the server too (a copy of the cookie opens nothing), and show the login page."""
    if current_user.is_authenticated:
        log_event("logout")
    end_session()
    flash("Vous êtes déconnecté(e).", "success")
    return redirect(url_for("auth.login"))


@bp.post("/deconnexion/tous-les-appareils")
def logout_everywhere():
    """End every session of the account: this browser, the phone, a forgotten library PC."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    user_id = current_user.id
    ended = end_every_session(user_id)
    log_event("logout.all_devices", user_id, sessions=ended)
    end_session()
    flash("Vous êtes déconnecté(e) de tous les appareils.", "success")
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
        # The same work for any address (no lookup here: the outbox sender makes the mail), so neither the
        # answer nor its time tells whether an account exists. A few mails per login and hour at most.
        if not ratelimit.check("forgot_email", email):
            outbox.queue_password_reset(db, email)
            db.commit()
            outbox.send_soon(current_app._get_current_object())
        log_event("password.reset_requested", login=email[:254])
        return render_template("auth/forgot_sent.html")
    return render_template("auth/forgot.html", form=form)


@bp.route("/mot-de-passe/nouveau/<token>", methods=["GET", "POST"])
def reset(token: str):
    """Choose a new password from the link of the mail (single use, 30 minutes); never cached."""
    body, status = _reset(token)
    return body, status, {"Cache-Control": "no-store"}


def _reset(token: str):
    db = get_db()
    row, problem = accounts.find_token(db, token, ("reset", "invite"))  # invite: a new account's first password
    if problem:
        status = 404 if problem == "unknown" else 410
        return render_template("auth/link_problem.html", message=accounts.TOKEN_PROBLEMS[problem]), status
    user = db.get(User, row.user_id)
    form = NewPasswordForm()
    if form.validate_on_submit():
        issue = accounts.password_problem(db, current_app.extensions["ribambelle.hasher"], user, form.password.data,
                                          current_app.config["TOWN_NAME"])
        if issue:
            form.password.errors.append(issue)
        elif accounts.use_token(db, row):
            accounts.set_password(db, current_app.extensions["ribambelle.hasher"], user, form.password.data)
            db.commit()
            log_event("password.reset_done" if row.purpose == "reset" else "password.first_chosen", user.id)
            # Not logged in by the link (OWASP): the parent logs in with the new password, the login filled in.
            end_session()
            session["login_hint"] = user.email
            flash("Votre nouveau mot de passe est enregistré. Connectez-vous avec votre identifiant et ce mot de passe.",
                  "success")
            return redirect(url_for("auth.login")), 302
        else:
            db.rollback()
            return render_template("auth/link_problem.html", message=accounts.TOKEN_PROBLEMS["used"]), 410
    return render_template("auth/reset.html", form=form, user=user, first=row.purpose == "invite"), 200


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site: never send a parent elsewhere after login."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target



