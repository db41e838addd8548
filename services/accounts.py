"""Logins: authentication with growing delays, single-use mail links, login and password changes."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from sqlalchemy import delete, update
from sqlmodel import Session, select

from models import AuthToken, Family, LoginSession, LoginThrottle, User, utcnow
from services import passwords

FREE_FAILURES = 3  # failed attempts before delays start
MAX_DELAY_SECONDS = 15 * 60  # delays grow, but the account is never locked for good
RESET_LIFETIME = timedelta(minutes=30)
EMAIL_CHANGE_LIFETIME = timedelta(hours=48)
INVITE_LIFETIME = timedelta(days=7)  # a new account's first password: the parent may read the mail late
LIFETIMES = {"reset": RESET_LIFETIME, "email": EMAIL_CHANGE_LIFETIME, "invite": INVITE_LIFETIME}

# A hash to verify against when the login is unknown, so that both cases take the same time.
_DUMMY_HASH: dict[int, str] = {}


def normalize_email(value: str) -> str:
    return (value or "").strip().lower()


@dataclass
class LoginResult:
    user: User | None = None
    wait_seconds: int = 0  # > 0: too many failures, try again later


def authenticate(db: Session, hasher: PasswordHasher, email: str, password: str) -> LoginResult:
    """Check a login. Unknown address and wrong password fail alike, and are throttled alike."""
    key = normalize_email(email)[:254]
    now = utcnow()
    throttle = db.get(LoginThrottle, key)
    if throttle and throttle.blocked_until and throttle.blocked_until > now:
        return LoginResult(wait_seconds=int((throttle.blocked_until - now).total_seconds()) + 1)

    user = db.exec(select(User).where(User.email == key)).first() if key else None
    # End the transaction before the slow hash: on SQLite it may hold the write lock.
    db.commit()
    if user is not None and user.active:
        ok = passwords.verify(hasher, user.password_hash, password)
    else:
        passwords.verify(hasher, _dummy_hash(hasher), password)
        ok = False

    if ok:
        if throttle:
            db.delete(throttle)
        user.last_login_at = now
        if hasher.check_needs_rehash(user.password_hash):
            user.password_hash = passwords.hash_password(hasher, password)
        db.add(user)
        db.commit()
        return LoginResult(user=user)

    _record_failure(db, key, now)
    return LoginResult()


def _record_failure(db: Session, key: str, now: datetime) -> None:
    throttle = db.get(LoginThrottle, key)
    if throttle is None:
        throttle = LoginThrottle(key=key, failures=0)
    elif throttle.last_failure_at and now - throttle.last_failure_at > timedelta(hours=24):
        throttle.failures = 0  # old failures are forgotten
    throttle.failures += 1
    throttle.last_failure_at = now
    if throttle.failures >= FREE_FAILURES:
        delay = min(2 ** (throttle.failures - FREE_FAILURES) * 5, MAX_DELAY_SECONDS)
        throttle.blocked_until = now + timedelta(seconds=delay)
    db.add(throttle)
    try:
        db.commit()
    except Exception:  # two failures for one key at once: the other one recorded it
        db.rollback()


def _dummy_hash(hasher: PasswordHasher) -> str:
    key = id(hasher)
    if key not in _DUMMY_HASH:
        _DUMMY_HASH[key] = hasher.hash(secrets.token_hex(16))
    return _DUMMY_HASH[key]


# --- single-use links -----------------------------------------------------------------------------


def token_hash(token: str) -> str:
    """What is stored of a link's token: its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(db: Session, user: User, purpose: str, new_email: str = "") -> str:
    """Create a link token for ``user``; earlier unused tokens of that purpose are superseded."""
    now = utcnow()
    db.execute(
        update(AuthToken)
        .where(AuthToken.user_id == user.id, AuthToken.purpose == purpose)
        .where(AuthToken.used_at.is_(None), AuthToken.superseded_at.is_(None))
        .values(superseded_at=now)
    )
    token = secrets.token_urlsafe(32)
    lifetime = LIFETIMES[purpose]
    db.add(
        AuthToken(
            user_id=user.id,
            purpose=purpose,
            token_hash=token_hash(token),
            new_email=new_email,
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    return token


TOKEN_PROBLEMS = {
    "unknown": "Ce lien n'est pas valide. Vérifiez qu'il a été copié en entier, ou faites une nouvelle demande.",
    "used": "Ce lien a déjà été utilisé. Si besoin, faites une nouvelle demande.",
    "expired": "Ce lien a expiré. Faites une nouvelle demande : vous recevrez un nouveau lien.",
    "superseded": "Ce lien a été remplacé par un lien plus récent : utilisez le dernier courriel reçu.",
}


def find_token(db: Session, token: str, purpose: str | tuple[str, ...]) -> tuple[AuthToken | None, str | None]:
    """The token row and None, or None and the key of TOKEN_PROBLEMS saying why it cannot be used."""
    purposes = (purpose,) if isinstance(purpose, str) else purpose
    if not token or len(token) > 100:
        return None, "unknown"
    row = db.exec(select(AuthToken).where(AuthToken.token_hash == token_hash(token))).first()
    if row is None or row.purpose not in purposes:
        return None, "unknown"
    if row.used_at:
        return None, "used"
    if row.superseded_at:
        return None, "superseded"
    if row.expires_at < utcnow():
        return None, "expired"
    return row, None


def use_token(db: Session, row: AuthToken) -> bool:
    """Mark the token used; False when another request used it first (a double submit)."""
    result = db.execute(
        update(AuthToken).where(AuthToken.id == row.id, AuthToken.used_at.is_(None)).values(used_at=utcnow())
    )
    return result.rowcount == 1


def password_problem(db: Session, hasher: PasswordHasher, user: User, new_password: str, town_name: str) -> str | None:
    """Why ``new_password`` is refused for ``user``, in French (strength against what is known of the
    account: login, names, family, town; never the current password), or None."""
    family = db.get(Family, user.family_id) if user.family_id else None
    words = [user.first_name, user.last_name, family.name if family else "", town_name]
    return passwords.new_password_problem(new_password, user.email, words, hasher, user.password_hash)


def set_password(db: Session, hasher: PasswordHasher, user: User, new_password: str) -> None:
    """Store a new password and end every session of the account (the caller starts a new one)."""
    user.password_hash = passwords.hash_password(hasher, new_password)
    user.session_version += 1
    db.add(user)
    db.execute(delete(LoginSession).where(LoginSession.user_id == user.id))
    db.execute(
        update(AuthToken)
        .where(AuthToken.user_id == user.id, AuthToken.purpose.in_(("reset", "invite")), AuthToken.used_at.is_(None))
        .values(superseded_at=utcnow())
    )
    throttle = db.get(LoginThrottle, user.email)
    if throttle:
        db.delete(throttle)


def email_taken(db: Session, email: str, except_user_id: int | None = None) -> bool:
    user = db.exec(select(User).where(User.email == normalize_email(email))).first()
    return user is not None and user.id != except_user_id


def create_account(db: Session, hasher: PasswordHasher, email: str, role: str, first_name: str, last_name: str,
                   family_id: int | None = None) -> tuple[User, str]:
    """A new login without a usable password, and the single-use link token to choose one (7 days).

    The caller checks the address is free, sends the invitation mail and commits.
    """
    user = User(email=normalize_email(email), role=role, first_name=first_name, last_name=last_name,
                family_id=family_id, password_hash=hasher.hash(secrets.token_urlsafe(32)))
    db.add(user)
    db.flush()
    return user, issue_token(db, user, "invite")
