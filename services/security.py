"""Who is logged in and for how long (sessions recorded in the database), and the security log.

The web side of it (decorators, request hooks, headers, the htmx helpers) is blueprints/web.py."""
from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app, g, has_request_context, request, session
from flask_login import login_user, logout_user
from sqlalchemy import delete

from db import get_db
from models import Account, LoginSession, utcnow

# The security log (ASVS V7): one JSON line per event, to stderr (gunicorn's error log, journald).
security_log = logging.getLogger("ribambelle.security")

# The clock of session ages; tests move it forward as an idle browser's owner would by waiting.
clock = time.time


@dataclass(frozen=True, slots=True)
class SessionUser(Account):
    """The logged-in account as every request reads it (``current_user``): its row's plain values, no
    ORM object. A view that changes the account, or needs its password hash, loads the ``User``."""

    id: int
    email: str
    role: str
    first_name: str
    last_name: str
    family_id: int | None
    active: bool
    session_version: int


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


def key_hash(key: str) -> str:
    """What the database keeps of a session key: its SHA-256, never the key."""
    return hashlib.sha256(key.encode()).hexdigest()


def start_session(user) -> None:
    """Log ``user`` in on a fresh session: nothing from before the login is kept.

    The session is recorded in the database (``LoginSession``): the cookie alone opens nothing once
    the row is gone (logout, "Se déconnecter de tous les appareils", password change).
    """
    db = get_db()
    longest = timedelta(hours=current_app.config["SESSION_MAX_HOURS"])
    db.execute(delete(LoginSession).where(LoginSession.created_at < utcnow() - longest))  # ended by age
    key = secrets.token_urlsafe(32)
    db.add(LoginSession(key_hash=key_hash(key), user_id=user.id))
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
        db.execute(delete(LoginSession).where(LoginSession.key_hash == key_hash(key)))
        db.commit()
    logout_user()
    session.clear()


def end_every_session(user_id: int) -> int:
    """End every open session of the account, on every device (the caller's included). Returns how many."""
    db = get_db()
    ended = db.execute(delete(LoginSession).where(LoginSession.user_id == user_id)).rowcount
    db.commit()
    return ended
