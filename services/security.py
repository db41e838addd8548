"""Who is logged in, for how long, the security log, and the HTTP headers that protect every page."""
from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from datetime import timedelta
from functools import wraps

from flask import abort, flash, g, has_request_context, redirect, request, session, url_for
from flask_login import current_user, login_user, logout_user
from sqlalchemy import delete
from sqlmodel import select

from models import LoginSession, User, get_db, utcnow
from services.passwords import make_hasher

# The security log (ASVS V7): one JSON line per event, to stderr (gunicorn's error log, journald).
security_log = logging.getLogger("ribambelle.security")

# The clock of session ages; tests move it forward as an idle browser's owner would by waiting.
clock = time.time

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'self'; object-src 'none'"
)


def _requires(allowed, who: str):
    """A view decorator: a visitor gets the login page, a logged-in account that ``allowed`` refuses 403."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            from app import login_manager

            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not allowed(current_user):
                abort(403)
            return view(*args, **kwargs)

        wrapped.__doc__ = f"{view.__doc__ or ''}\n\nFor {who}."
        return wrapped

    return decorator


# Agents validate and record; admins also configure the town and manage accounts; parents see their family.
staff_required = _requires(lambda user: user.is_staff, "agents and admins")
admin_required = _requires(lambda user: user.role == "admin", "admins only")
parent_required = _requires(lambda user: user.family_id is not None, "a parent with a family file")


def log_event(event: str, user_id: int | None = None, **fields) -> None:
    """Write one line of the security log: what, who, from where, when. Never pass a secret or a token."""
    # Only a user Flask-Login already loaded: logging never queries the database (it may run inside
    # another transaction, as when a payment answer is refused).
    loaded = g.get("_login_user") if has_request_context() else None
    if user_id is None and loaded is not None and loaded.is_authenticated:
        user_id = loaded.id
    line = {"at": utcnow().isoformat(timespec="seconds"), "event": event, "user": user_id,
            "ip": request.remote_addr if has_request_context() else None, **fields}
    security_log.info(json.dumps(line, ensure_ascii=False, default=str))


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def start_session(user) -> None:
    """Log ``user`` in on a fresh session: nothing from before the login is kept.

    The session is recorded in the database (``LoginSession``): the cookie alone opens nothing once
    the row is gone (logout, "Se déconnecter de tous les appareils", password change).
    """
    from flask import current_app

    db = get_db()
    longest = timedelta(hours=current_app.config["SESSION_MAX_HOURS"])
    db.execute(delete(LoginSession).where(LoginSession.created_at < utcnow() - longest))  # ended by age
    key = secrets.token_urlsafe(32)
    db.add(LoginSession(key_hash=_key_hash(key), user_id=user.id))
    db.commit()
    session.clear()
    login_user(user)
    session.permanent = True
    now = int(clock())
    session["sid"] = key
    session["login_at"] = now
    session["seen_at"] = now


def end_session() -> None:
    """Log out on the server too: this session's row is deleted, so a copy of the cookie stops working."""
    key = session.get("sid")
    if key:
        db = get_db()
        db.execute(delete(LoginSession).where(LoginSession.key_hash == _key_hash(key)))
        db.commit()
    logout_user()
    session.clear()


def end_every_session(user_id: int) -> int:
    """End every open session of the account, on every device (the caller's included). Returns how many."""
    db = get_db()
    ended = db.execute(delete(LoginSession).where(LoginSession.user_id == user_id)).rowcount
    db.commit()
    return ended


def init_app(app) -> None:
    from app import login_manager

    app.extensions["ribambelle.hasher"] = make_hasher(
        app.config["ARGON2_TIME_COST"], app.config["ARGON2_MEMORY_COST"]
    )
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Connectez-vous pour accéder à cette page."
    login_manager.login_message_category = "info"
    login_manager.session_protection = None  # sessions end by time and by password change

    @login_manager.user_loader
    def load_user(user_id: str):
        key = session.get("sid")
        try:
            uid, version = (int(part) for part in user_id.split("."))
        except ValueError:
            return None
        if not key:
            return None
        # One query: the account, only while this session's row exists (logout deletes it).
        user = get_db().exec(
            select(User).join(LoginSession, LoginSession.user_id == User.id)
            .where(User.id == uid, LoginSession.key_hash == _key_hash(key))
        ).first()
        if user is None or not user.active or user.session_version != version:
            return None
        return user

    @login_manager.unauthorized_handler
    def unauthorized():
        if login_manager.login_message and request.method == "GET" and not _is_htmx():
            flash(login_manager.login_message, "info")
        target = url_for("auth.login", next=request.full_path if request.method == "GET" else None)
        if _is_htmx():
            # Never swap a login form into a fragment: send the whole page to the login.
            return "", 204, {"HX-Redirect": target}
        return redirect(target)

    @app.before_request
    def enforce_session_age():
        """End a session idle too long or older than the maximum, whatever its cookie says."""
        if request.endpoint == "static" or "_user_id" not in session:
            return None  # static files never rewrite the cookie (a late favicon would undo a flash)
        now = int(clock())
        idle = app.config["SESSION_IDLE_MINUTES"] * 60
        longest = app.config["SESSION_MAX_HOURS"] * 3600
        if now - session.get("seen_at", 0) > idle or now - session.get("login_at", 0) > longest:
            end_session()
            flash("Votre session a expiré. Reconnectez-vous.", "info")
            return None
        if now - session.get("seen_at", 0) >= 30:  # rewrite the cookie at most every 30 s
            session["seen_at"] = now
        return None

    # Where "Payer en ligne" sends the browser, read from the configured eopayment backend.
    # (Imported here: services.payments writes to the security log of this module.)
    from services.payments import provider_origins

    csp = CSP.replace("form-action 'self'", " ".join(["form-action 'self'", *provider_origins(app.config)]))

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("Content-Security-Policy", csp)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"
        )
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        if "_user_id" in session and not request.path.startswith("/static/"):
            # Personal pages are never kept by the browser or a shared proxy.
            response.headers["Cache-Control"] = "no-store"
        if _is_htmx_page_route(response):
            response.vary.add("HX-Request")
            response.vary.add("HX-History-Restore-Request")
        return response


def wants_fragment() -> bool:
    """A page route answers its fragment to htmx, but the whole page when htmx restores history (Back):
    what it puts back on the screen must be a page with its header, title and margins."""
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-History-Restore-Request") != "true"


def _is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def _is_htmx_page_route(response) -> bool:
    return response.mimetype == "text/html"
