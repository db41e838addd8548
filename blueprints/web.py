"""The web side of accounts and security: the view decorators, the request hooks (who is logged in,
sessions that end), the headers of every answer (CSP), and the htmx helpers every blueprint uses."""
from __future__ import annotations

from functools import wraps

from flask import abort, flash, make_response, redirect, render_template, request, session, url_for
from flask_login import current_user
from sqlalchemy import bindparam
from sqlmodel import select

from db import first_row, get_db
from extensions import login_manager
from models import LoginSession, User
from services import security
from services.passwords import make_hasher
from services.payments import provider_origins
from services.pdf import PdfError, html_to_pdf, invoice_pdf

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


# Every request of a logged-in parent runs it: built once, the values come as parameters.
SESSION_USER = (select(User.id, User.email, User.role, User.first_name, User.last_name, User.family_id, User.active,
                       User.session_version)
                .join(LoginSession, LoginSession.user_id == User.id)
                .where(User.id == bindparam("user"), LoginSession.key_hash == bindparam("key_hash")))


def init_app(app) -> None:
    """The request hooks: who is logged in, sessions that end, the headers of every answer."""
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
        row = first_row(get_db(), SESSION_USER, {"user": uid, "key_hash": security.key_hash(key)})
        if row is None or not row["active"] or row["session_version"] != version:
            return None
        return security.SessionUser(**row)

    @login_manager.unauthorized_handler
    def unauthorized():
        if login_manager.login_message and request.method == "GET" and not is_htmx():
            flash(login_manager.login_message, "info")
        target = url_for("auth.login", next=request.full_path if request.method == "GET" else None)
        if is_htmx():
            # Never swap a login form into a fragment: send the whole page to the login.
            return "", 204, {"HX-Redirect": target}
        return redirect(target)

    @app.before_request
    def enforce_session_age():
        """End a session idle too long or older than the maximum, whatever its cookie says."""
        if request.endpoint == "static" or "_user_id" not in session:
            return None  # static files never rewrite the cookie (a late favicon would undo a flash)
        now = int(security.clock())  # read each time: tests move it
        idle = app.config["SESSION_IDLE_MINUTES"] * 60
        longest = app.config["SESSION_MAX_HOURS"] * 3600
        if now - session.get("seen_at", 0) > idle or now - session.get("login_at", 0) > longest:
            security.end_session()
            flash("Votre session a expiré. Reconnectez-vous.", "info")
            return None
        if now - session.get("seen_at", 0) >= 30:  # rewrite the cookie at most every 30 s
            session["seen_at"] = now
        return None

    # Where "Payer en ligne" sends the browser, read from the configured eopayment backend.
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
    return is_htmx() and request.headers.get("HX-History-Restore-Request") != "true"


def is_htmx() -> bool:
    """The request comes from htmx (it wants a fragment, or a redirect said in HX-Redirect)."""
    return request.headers.get("HX-Request") == "true"


def _is_htmx_page_route(response) -> bool:
    return response.mimetype == "text/html"


def pdf_response(html: str, filename: str, invoice_id: int | None = None):
    """The PDF made from ``html``, shown in the browser (``inline``) under ``filename``; an invoice's is
    made once and then served from the database while its HTML stays the same (``invoice_pdf``)."""
    try:
        body = html_to_pdf(html) if invoice_id is None else invoice_pdf(get_db(), invoice_id, html)
    except PdfError:
        abort(500)
    response = make_response(body)
    response.mimetype = "application/pdf"
    response.headers["Content-Disposition"] = f'inline; filename="{filename}"'
    return response


def page_or_fragment(page: str, fragment: str, **context):
    """A full page, or its fragment for htmx (not for a history restore); the answer varies on HX-Request."""
    response = make_response(render_template(fragment if wants_fragment() else page, **context))
    response.vary.add("HX-Request")
    return response
