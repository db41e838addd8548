"""Every table of Ribambelle, and the database session helpers.

Times are timezone-aware UTC datetimes (``utcnow()``; SQLModel refuses naive ones); they become
Europe/Paris only when shown.
"""

from datetime import date, datetime, timezone
from typing import Optional

from flask import current_app, g
from sqlalchemy import JSON, Column, UniqueConstraint, event
from sqlalchemy.engine import Engine
from sqlmodel import Field, Relationship, Session, SQLModel, create_engine


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(timezone.utc)


class Family(SQLModel, table=True):
    """The household file ("dossier famille")."""

    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, index=True)
    address_line: str = Field(default="", max_length=200)
    address_extra: str = Field(default="", max_length=200)
    postcode: str = Field(default="", max_length=10)
    city: str = Field(default="", max_length=100)
    phone_home: str = Field(default="", max_length=30)
    qf: Optional[int] = Field(default=None)  # quotient familial, in euros
    qf_valid_until: Optional[date] = Field(default=None)
    allowance_scheme: str = Field(default="", max_length=3)  # "CAF", "MSA" or ""
    allowance_number: str = Field(default="", max_length=20)
    payer_position: int = Field(default=1)  # which guardian pays the invoices
    created_at: datetime = Field(default_factory=utcnow)

    guardians: list["Guardian"] = Relationship(
        back_populates="family",
        sa_relationship_kwargs={"order_by": "Guardian.position", "cascade": "all, delete-orphan"},
    )
    children: list["Child"] = Relationship(
        back_populates="family", sa_relationship_kwargs={"order_by": "Child.birth_date"}
    )
    users: list["User"] = Relationship(back_populates="family")


class Guardian(SQLModel, table=True):
    """A legal guardian ("responsable légal") of a family, with or without a login."""

    __table_args__ = (UniqueConstraint("family_id", "position"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    family_id: int = Field(foreign_key="family.id", index=True)
    position: int = Field(default=1)  # 1 or 2
    title: str = Field(default="", max_length=10)  # "Mme", "M."
    first_name: str = Field(max_length=100)
    last_name: str = Field(max_length=100)
    relationship: str = Field(default="", max_length=50)  # "Mère", "Père", "Tuteur"...
    phone_mobile: str = Field(default="", max_length=30)
    phone_work: str = Field(default="", max_length=30)
    email: str = Field(default="", max_length=254)
    employer: str = Field(default="", max_length=100)

    family: Optional[Family] = Relationship(back_populates="guardians")


class User(SQLModel, table=True):
    """A login: a parent of one family, or municipal staff (agent, admin)."""

    id: Optional[int] = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True, index=True)  # always lower case
    password_hash: str = Field(max_length=255)
    role: str = Field(default="parent", max_length=10)  # parent, agent, admin
    first_name: str = Field(default="", max_length=100)
    last_name: str = Field(default="", max_length=100)
    family_id: Optional[int] = Field(default=None, foreign_key="family.id", index=True)
    active: bool = Field(default=True)
    # Bumped when the password changes: every session holding an older value ends.
    session_version: int = Field(default=1)
    created_at: datetime = Field(default_factory=utcnow)
    last_login_at: Optional[datetime] = Field(default=None)

    family: Optional[Family] = Relationship(back_populates="users")

    # Flask-Login protocol
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return f"{self.id}.{self.session_version}"

    @property
    def is_staff(self) -> bool:
        return self.role in ("agent", "admin")

    @property
    def display_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or self.email


class Child(SQLModel, table=True):
    """A child of a family, with the health record the staff need."""

    id: Optional[int] = Field(default=None, primary_key=True)
    family_id: int = Field(foreign_key="family.id", index=True)
    first_name: str = Field(max_length=100)
    last_name: str = Field(max_length=100)
    birth_date: date
    sex: str = Field(default="", max_length=1)  # "F", "M" or ""
    school: str = Field(default="", max_length=100)
    school_class: str = Field(default="", max_length=30)
    allergies: str = Field(default="", max_length=1000)
    has_pai: bool = Field(default=False)  # projet d'accueil individualisé
    pai_details: str = Field(default="", max_length=1000)
    medical_notes: str = Field(default="", max_length=2000)
    doctor_name: str = Field(default="", max_length=100)
    doctor_phone: str = Field(default="", max_length=30)
    pickup_persons: str = Field(default="", max_length=2000)  # one "name - phone" per line
    image_rights: bool = Field(default=False)
    created_at: datetime = Field(default_factory=utcnow)

    family: Optional[Family] = Relationship(back_populates="children")

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


class ChangeRequest(SQLModel, table=True):
    """A change a parent asked for, waiting for an agent ("en attente de validation").

    ``target`` is "family" or "child"; ``child_id`` is empty for a new child. ``after`` holds the
    values asked for, ``before`` the values on file when the request was last edited.
    """

    id: Optional[int] = Field(default=None, primary_key=True)
    family_id: int = Field(foreign_key="family.id", index=True)
    target: str = Field(max_length=10)
    child_id: Optional[int] = Field(default=None, foreign_key="child.id", index=True)
    before: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    after: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="pending", max_length=10, index=True)  # pending, validated, refused
    requested_by_id: int = Field(foreign_key="user.id")
    requested_at: datetime = Field(default_factory=utcnow)
    decided_by_id: Optional[int] = Field(default=None, foreign_key="user.id")
    decided_at: Optional[datetime] = Field(default=None)
    message: str = Field(default="", max_length=2000)  # the agent's word to the parent


class AuthToken(SQLModel, table=True):
    """A single-use link sent by mail: password reset (30 min) or login change (48 h).

    Only the SHA-256 of the token is stored, so a database leak gives no working link.
    """

    id: Optional[int] = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    purpose: str = Field(max_length=20)  # "reset", "email"
    token_hash: str = Field(max_length=64, unique=True, index=True)
    new_email: str = Field(default="", max_length=254)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: Optional[datetime] = Field(default=None)
    superseded_at: Optional[datetime] = Field(default=None)


class LoginThrottle(SQLModel, table=True):
    """Failed logins per identifier, existing or not, so that delays reveal nothing."""

    key: str = Field(primary_key=True, max_length=254)
    failures: int = Field(default=0)
    last_failure_at: Optional[datetime] = Field(default=None)
    blocked_until: Optional[datetime] = Field(default=None)


class OutboxMail(SQLModel, table=True):
    """A mail to send. Kept until an SMTP server took it, so none is lost while it is down."""

    id: Optional[int] = Field(default=None, primary_key=True)
    recipient: str = Field(max_length=254, index=True)
    subject: str = Field(max_length=200)
    body_text: str
    body_html: str = Field(default="")
    status: str = Field(default="pending", max_length=10, index=True)  # pending, sending, sent
    attempts: int = Field(default=0)
    next_attempt_at: datetime = Field(default_factory=utcnow)
    locked_until: Optional[datetime] = Field(default=None)
    last_error: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: Optional[datetime] = Field(default=None)


# --- engine and sessions --------------------------------------------------------------------------


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    """SQLite: enforce foreign keys, let readers and one writer work together, wait on locks."""
    module = type(dbapi_connection).__module__
    if module.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()


def make_engine(url: str):
    """An engine for ``url``; SQLite connections may cross threads (the dev server's)."""
    if url.startswith("sqlite"):
        return create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
    return create_engine(url, pool_pre_ping=True)


def get_db() -> Session:
    """The request's database session, opened on first use and closed at teardown."""
    if "db" not in g:
        g.db = Session(current_app.extensions["ribambelle.engine"], expire_on_commit=False)
    return g.db


def close_db(exc=None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.close()
