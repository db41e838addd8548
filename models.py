"""Every table of Ribambelle (the engine and sessions are in db.py).

Times are timezone-aware UTC datetimes (``utcnow()``; SQLModel refuses naive ones); they become
Europe/Paris only when shown.
"""

from datetime import date, datetime, time, timezone
from enum import StrEnum
from typing import Optional

from sqlalchemy import JSON, Column, Index, LargeBinary, UniqueConstraint, text
from sqlmodel import Field, Relationship, SQLModel


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(timezone.utc)


# --- states: one StrEnum per state column, codes in English (French only in labels and URLs) ------
# A member is its code (``LineState.PENDING == "pending"``): the columns stay plain strings, and the
# words and icon of each state live in one table beside the code that shows them.


class ChangeStatus(StrEnum):
    """ChangeRequest.status: a change of the family file waiting for an agent."""
    PENDING = "pending"
    VALIDATED = "validated"
    REFUSED = "refused"


class ReservationStatus(StrEnum):
    """Reservation.status: the state of its lines taken together (services.planning.reservation_status)."""
    PENDING = "pending"  # at least one line waits for the structure
    ACCEPTED = "accepted"
    PARTIAL = "partial"  # some lines accepted, some refused
    REFUSED = "refused"


class LineState(StrEnum):
    """ReservationLine.state: where one day and unit of a reservation stands."""
    PENDING = "pending"
    DECIDING = "deciding"  # an agent's decision is being written: claimed by a conditional UPDATE, so
    #                        that two agents deciding the same line at once decide it once
    ACCEPTED = "accepted"
    REFUSED = "refused"


class Outcome(StrEnum):
    """ReservationLine.outcome and DraftLine.expected: what the rules gave when it was asked."""
    ACCEPTED = "accepted"
    REQUEST = "request"  # an agent decides
    WAITLIST = "waitlist"  # full: on the waiting list
    CANCEL_ACCEPTED = "cancel-accepted"  # a cancellation within the deadline
    CANCEL_REQUEST = "cancel-request"  # a late cancellation: an agent decides
    REFUSED = "refused"


class BookingStatus(StrEnum):
    """Booking.status: what a child holds on a day and unit."""
    ACCEPTED = "accepted"
    REQUEST = "request"
    WAITLIST = "waitlist"


class Action(StrEnum):
    """DraftLine.action and ReservationLine.action."""
    BOOK = "book"
    CANCEL = "cancel"


class PaymentStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    REFUSED = "refused"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class MandateStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"  # two debits rejected in a row: no more debits until a new IBAN
    REVOKED = "revoked"


class DebitState(StrEnum):
    """Invoice.debit_state: where the invoice's direct debit is ("" when it is paid otherwise)."""
    PLANNED = "planned"  # announced to the family, not yet in a file
    SENT = "sent"  # in a direct-debit file given to the bank
    REJECTED = "rejected"  # returned by the bank: payable again online or at the counter


class InvoiceState(StrEnum):
    """What ``Invoice.state(today)`` says (computed, never stored)."""
    DUE = "due"
    PARTIAL = "partial"
    OVERDUE = "overdue"
    PAID = "paid"
    CANCELLED = "cancelled"


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
    # The children whose file this household opened, and those it shares with another household
    # (shared custody, ``ChildHousehold``): ``children`` is both, as every screen lists them.
    own_children: list["Child"] = Relationship(
        back_populates="family", sa_relationship_kwargs={"order_by": "Child.birth_date"}
    )
    shared_children: list["Child"] = Relationship(
        sa_relationship_kwargs={"secondary": "childhousehold", "order_by": "Child.birth_date", "viewonly": True}
    )
    users: list["User"] = Relationship(back_populates="family")

    @property
    def children(self) -> list["Child"]:
        return sorted([*self.own_children, *self.shared_children], key=lambda c: (c.birth_date, c.id))


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


class Account:
    """What a login is to Flask-Login and to the pages, from its columns: shared by the ``User`` row and by
    the logged-in account every request reads (``services.security.SessionUser``)."""

    __slots__ = ()
    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return bool(self.active)

    def get_id(self) -> str:
        return f"{self.id}.{self.session_version}"

    @property
    def is_staff(self) -> bool:
        return self.role in ("agent", "admin")

    @property
    def display_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or self.email


class User(Account, SQLModel, table=True):
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
    # The private calendar link's version: "Renouveler le lien" moves it on, and the old link stops.
    calendar_version: int = Field(default=0)
    created_at: datetime = Field(default_factory=utcnow)

    family: Optional[Family] = Relationship(back_populates="own_children")
    # The second household of a child in shared custody (none for most children).
    other_households: list["Family"] = Relationship(
        sa_relationship_kwargs={"secondary": "childhousehold", "order_by": "Family.name", "viewonly": True}
    )

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


class ChildHousehold(SQLModel, table=True):
    """Shared custody ("garde alternée"): a second household of a child, whose file stays the first
    household's (``Child.family_id``). Each household books and pays for its own days; the child's
    record is shared, except the persons allowed to pick the child up, which are each household's."""

    __table_args__ = (UniqueConstraint("child_id", "family_id"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    child_id: int = Field(foreign_key="child.id", index=True)
    family_id: int = Field(foreign_key="family.id", index=True)
    pickup_persons: str = Field(default="", max_length=2000)  # this household's, one "name - phone" per line
    calendar_version: int = Field(default=0)  # this household's calendar link (see Child.calendar_version)
    created_by_id: Optional[int] = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)


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
    status: str = Field(default=ChangeStatus.PENDING, max_length=10, index=True)  # ChangeStatus
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


class LoginSession(SQLModel, table=True):
    """An open session of a login. The cookie holds its random key; logging out deletes the row, so a cookie
    copied before "Se déconnecter" opens nothing afterwards."""

    id: Optional[int] = Field(default=None, primary_key=True)
    key_hash: str = Field(max_length=64, unique=True)  # SHA-256 of the key: the database never holds the key
    user_id: int = Field(foreign_key="user.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, index=True)


class RateCounter(SQLModel, table=True):
    """Requests counted for a rate limit ("login:203.0.113.7") in the current window, shared by every process."""

    key: str = Field(primary_key=True, max_length=200)
    window_start: datetime
    count: int = Field(default=0)


class OutboxMail(SQLModel, table=True):
    """A mail to send. Kept until an SMTP server took it, so none is lost while it is down."""

    id: Optional[int] = Field(default=None, primary_key=True)
    recipient: str = Field(max_length=254, index=True)
    subject: str = Field(max_length=200)
    body_text: str
    body_html: str = Field(default="")
    # Empty for a mail written when queued. "reset_password": only the typed address is stored; the link
    # and the mail are made when it leaves (never a stale link; the request does the same work whether
    # or not the address has an account, and a row for an unknown address ends "dropped", unsent).
    kind: str = Field(default="", max_length=30)
    # The same Message-ID on every try: a copy sent twice (a process killed mid-send) reads as one mail.
    message_id: str = Field(default="", max_length=200)
    # The SHA-256 of the single-use link the mail carries, if any: a link that expired while the mail
    # waited (an SMTP outage) is replaced by a fresh one when the mail leaves.
    token_hash: str = Field(default="", max_length=64)
    status: str = Field(default="pending", max_length=10, index=True)  # pending, sending, sent, dropped
    attempts: int = Field(default=0)
    next_attempt_at: datetime = Field(default_factory=utcnow)
    locked_until: Optional[datetime] = Field(default=None)
    last_error: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: Optional[datetime] = Field(default=None)


# --- establishments, units, periods ---------------------------------------------------------------


class Establishment(SQLModel, table=True):
    """An accueil de loisirs or a périscolaire ("structure")."""

    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(max_length=150)
    kind: str = Field(default="loisirs", max_length=20)  # "loisirs", "periscolaire"
    address: str = Field(default="", max_length=300)
    phone: str = Field(default="", max_length=30)
    email: str = Field(default="", max_length=254)
    # « Les Inscriptions »: parents may ask online (until ``enrolment_until``, if set); ``enrolment_cap``:
    # the children it takes at most, beyond which requests wait on a list in order.
    enrolment_open: bool = Field(default=False)
    enrolment_until: Optional[date] = Field(default=None)
    enrolment_cap: Optional[int] = Field(default=None)

    units: list["Unit"] = Relationship(
        back_populates="establishment", sa_relationship_kwargs={"order_by": "Unit.position"}
    )


class Unit(SQLModel, table=True):
    """A bookable part of a day (Matinée, Repas, Journée...), with its capacity."""

    __table_args__ = (UniqueConstraint("establishment_id", "code"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    establishment_id: int = Field(foreign_key="establishment.id", index=True)
    code: str = Field(max_length=30)  # "matinee": used in element ids
    label: str = Field(max_length=60)
    # The planning's column heading on a phone ("A.-midi"); empty: the label, shortened if it is long.
    short_label: str = Field(default="", max_length=10)
    position: int = Field(default=0)
    capacity: int = Field(default=0)
    # Its hours (in the children's calendar feed); empty: a whole-day event.
    starts_at: Optional[time] = Field(default=None)
    ends_at: Optional[time] = Field(default=None)

    establishment: Optional[Establishment] = Relationship(back_populates="units")

    @property
    def short(self) -> str:
        """What fits a planning column at 320 px: the short label, else the label (cut at 7 letters)."""
        if self.short_label:
            return self.short_label
        return self.label if len(self.label) <= 8 else self.label[:7].rstrip() + "."


class UnitExclusion(SQLModel, table=True):
    """Two units that cannot both be booked for one child on one day (Journée and Matinée)."""

    unit_id: int = Field(foreign_key="unit.id", primary_key=True)
    excluded_unit_id: int = Field(foreign_key="unit.id", primary_key=True)


class Period(SQLModel, table=True):
    """A bookable span of one establishment, with its booking window and deadlines."""

    id: Optional[int] = Field(default=None, primary_key=True)
    establishment_id: int = Field(foreign_key="establishment.id", index=True)
    name: str = Field(max_length=150)
    start_date: date
    end_date: date
    booking_opens_at: datetime
    booking_closes_at: datetime
    # Processing deadlines ("délais de traitement"), in days before the booked date.
    auto_accept_days: int = Field(default=8)  # at least this far ahead: accepted at once
    min_days: int = Field(default=2)  # closer than this: locked
    cancel_auto_days: int = Field(default=8)
    cancel_min_days: int = Field(default=2)
    # Counting starts today until this time (Paris), tomorrow after it.
    cutoff_time: time = Field(default=time(23, 59))
    working_days: bool = Field(default=False)  # count Monday-Friday except public holidays
    waitlist_auto: bool = Field(default=False)  # a freed place goes to the waiting list at once
    surcharge_percent: int = Field(default=0)  # added to the price of a day attended without booking

    establishment: Optional[Establishment] = Relationship()


class PeriodUnit(SQLModel, table=True):
    """A unit offered in a period, on some weekdays ("0123456" = Monday to Sunday)."""

    period_id: int = Field(foreign_key="period.id", primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", primary_key=True)
    weekdays: str = Field(default="01234", max_length=7)


class ClosedDay(SQLModel, table=True):
    """A day a period is closed, besides the French public holidays (which are always closed)."""

    __table_args__ = (UniqueConstraint("period_id", "day"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    period_id: int = Field(foreign_key="period.id", index=True)
    day: date
    reason: str = Field(default="Fermeture", max_length=100)


class Enrollment(SQLModel, table=True):
    """A child admitted to an establishment ("inscription"): booking requires it."""

    __table_args__ = (UniqueConstraint("child_id", "establishment_id"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    child_id: int = Field(foreign_key="child.id", index=True)
    establishment_id: int = Field(foreign_key="establishment.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)


# --- planning, reservations, bookings ---------------------------------------------------------------


class Draft(SQLModel, table=True):
    """The planning being edited for one child and period, kept on the server until confirmed.

    ``revision`` grows with every change, so a confirmation knows which selection it confirms.
    """

    __table_args__ = (UniqueConstraint("child_id", "period_id", "family_id", name="uq_draft_child_period_family"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    child_id: int = Field(foreign_key="child.id", index=True)
    period_id: int = Field(foreign_key="period.id")
    family_id: int = Field(foreign_key="family.id")  # the household editing it (shared custody: one each)
    revision: int = Field(default=0)
    updated_at: datetime = Field(default_factory=utcnow)


class DraftLine(SQLModel, table=True):
    """One selected cell: book (or cancel) this unit on this day."""

    __table_args__ = (UniqueConstraint("draft_id", "unit_id", "day"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    draft_id: int = Field(foreign_key="draft.id", index=True)
    unit_id: int = Field(foreign_key="unit.id")
    day: date
    action: str = Field(default="book", max_length=10)  # "book", "cancel"
    expected: str = Field(default="", max_length=10)  # outcome shown when selected


class Reservation(SQLModel, table=True):
    """A numbered record made by "Confirmer la réservation" (or a cancellation request)."""

    id: Optional[int] = Field(default=None, primary_key=True)
    number: str = Field(max_length=20, unique=True)  # R-2027-000123
    family_id: int = Field(foreign_key="family.id", index=True)
    child_id: int = Field(foreign_key="child.id", index=True)
    period_id: int = Field(foreign_key="period.id", index=True)
    kind: str = Field(default="booking", max_length=15)  # "booking", "cancellation"
    absence: bool = Field(default=False)  # a same-day or next-day absence ("enfant malade")
    status: str = Field(default=ReservationStatus.PENDING, max_length=10, index=True)  # ReservationStatus
    confirm_key: str = Field(max_length=60, unique=True)  # draft id, revision and kind: one record per confirmation
    created_by_id: int = Field(foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)

    lines: list["ReservationLine"] = Relationship(
        back_populates="reservation",
        sa_relationship_kwargs={"order_by": "ReservationLine.day"},
    )


class ReservationLine(SQLModel, table=True):
    """A day and unit of a reservation, with its outcome.

    ``outcome`` is what the rules gave: accepted, request (an agent decides), waitlist (full).
    ``state`` is where it stands (``LineState``): pending, deciding (being decided), accepted, refused.
    """

    id: Optional[int] = Field(default=None, primary_key=True)
    reservation_id: int = Field(foreign_key="reservation.id", index=True)
    unit_id: int = Field(foreign_key="unit.id")
    day: date = Field(index=True)
    action: str = Field(default="book", max_length=10)
    outcome: str = Field(max_length=20)
    state: str = Field(default=LineState.PENDING, max_length=10, index=True)  # LineState
    note: str = Field(default="", max_length=300)  # why the outcome differs from the planning
    # Cancellations: an accepted late cancellation is billed unless the agent marks it justified.
    billable: bool = Field(default=False)
    justified: bool = Field(default=False)
    justification: str = Field(default="", max_length=300)
    message: str = Field(default="", max_length=2000)  # the agent's word
    decided_by_id: Optional[int] = Field(default=None, foreign_key="user.id")
    decided_at: Optional[datetime] = Field(default=None)

    reservation: Optional[Reservation] = Relationship(back_populates="lines")


class Booking(SQLModel, table=True):
    """What a child holds on a day and unit now: one row at most (the unique key forbids two).

    status: accepted, request (waiting for an agent), waitlist.
    """

    __table_args__ = (UniqueConstraint("child_id", "unit_id", "day"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    child_id: int = Field(foreign_key="child.id", index=True)
    unit_id: int = Field(foreign_key="unit.id")
    day: date
    status: str = Field(max_length=10)
    family_id: int = Field(foreign_key="family.id", index=True)  # the household that booked it and pays for it
    line_id: int = Field(foreign_key="reservationline.id")
    cancel_line_id: Optional[int] = Field(default=None, foreign_key="reservationline.id")  # a cancellation asked
    created_at: datetime = Field(default_factory=utcnow)


class Attendance(SQLModel, table=True):
    """Presence or absence of a child on a day and unit, ticked by an agent on the attendance list."""

    __table_args__ = (UniqueConstraint("child_id", "unit_id", "day"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    child_id: int = Field(foreign_key="child.id", index=True)
    unit_id: int = Field(foreign_key="unit.id")
    day: date = Field(index=True)
    present: bool
    booked: bool = Field(default=True)  # False: came without a booking (billed with a surcharge)
    recorded_by_id: int = Field(foreign_key="user.id")
    recorded_at: datetime = Field(default_factory=utcnow)


class DaySlot(SQLModel, table=True):
    """Places taken on a unit and day (accepted bookings and pending requests).

    Updated only by a conditional UPDATE (``taken < capacity``), which both SQLite and PostgreSQL
    apply atomically: two parents confirming the last place cannot both get it.
    """

    unit_id: int = Field(foreign_key="unit.id", primary_key=True)
    day: date = Field(primary_key=True)
    taken: int = Field(default=0)
    capacity: Optional[int] = Field(default=None)  # this day's own capacity, set by an admin; else the unit's


# --- billing ----------------------------------------------------------------------------------------


class QfBracket(SQLModel, table=True):
    """One of the town's quotient-familial brackets (qf_max empty: no ceiling), e.g. 0–450, 451–800."""

    id: Optional[int] = Field(default=None, primary_key=True)
    qf_min: int = Field(default=0)
    qf_max: Optional[int] = Field(default=None)


class Price(SQLModel, table=True):
    """The price of a unit for a quotient-familial bracket (qf_max empty: no ceiling).

    Without a period it is the unit's price; a row of a period, when there is one, wins for that period.
    """

    id: Optional[int] = Field(default=None, primary_key=True)
    period_id: Optional[int] = Field(default=None, foreign_key="period.id", index=True)
    unit_id: int = Field(foreign_key="unit.id")
    qf_min: int = Field(default=0)
    qf_max: Optional[int] = Field(default=None)
    amount_cents: int


class Invoice(SQLModel, table=True):
    """One invoice per family and month (F-2027-07-00042). Amounts in integer cents."""

    id: Optional[int] = Field(default=None, primary_key=True)
    number: str = Field(max_length=20, unique=True)
    family_id: int = Field(foreign_key="family.id", index=True)
    month: date = Field(index=True)  # first day of the billed month
    issued_on: date
    due_on: date
    total_cents: int
    paid_cents: int = Field(default=0)
    cancelled: bool = Field(default=False)
    cancel_reason: str = Field(default="", max_length=300)
    # Direct debit: the announced date (pre-notification) and where the debit is (DebitState, or "").
    debit_on: Optional[date] = Field(default=None, index=True)
    debit_state: str = Field(default="", max_length=10)
    # Contested by the family (the régie says so): no reminder is sent while it is.
    disputed: bool = Field(default=False)
    created_at: datetime = Field(default_factory=utcnow)

    lines: list["InvoiceLine"] = Relationship(
        back_populates="invoice", sa_relationship_kwargs={"order_by": "InvoiceLine.id"}
    )

    def state(self, today: date) -> InvoiceState:
        if self.cancelled:
            return InvoiceState.CANCELLED
        if self.paid_cents >= self.total_cents:
            return InvoiceState.PAID
        if self.due_on < today:
            return InvoiceState.OVERDUE
        if self.paid_cents > 0:
            return InvoiceState.PARTIAL
        return InvoiceState.DUE

    @property
    def left_cents(self) -> int:
        return max(self.total_cents - self.paid_cents, 0)

    @property
    def debit_note(self) -> str:
        """What the family reads of the invoice's direct debit beside its state ("" when none)."""
        if self.cancelled:
            return ""
        if self.debit_state == DebitState.PLANNED and self.debit_on:
            return f"Prélèvement le {self.debit_on:%d/%m/%Y}"
        if self.debit_state == DebitState.SENT:
            return "Payée par prélèvement"
        if self.debit_state == DebitState.REJECTED:
            return "Prélèvement rejeté par la banque"
        return ""


class InvoicePdf(SQLModel, table=True):
    """An invoice's PDF, made once and served from here while what it shows is the same.

    ``source_hash``: the SHA-256 of the HTML it was made from. A payment, a cancellation or a new
    layout changes the HTML, so the next download makes the new version and replaces this one.
    """

    invoice_id: int = Field(foreign_key="invoice.id", primary_key=True)
    source_hash: str = Field(max_length=64)
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    made_at: datetime = Field(default_factory=utcnow)


class InvoiceLine(SQLModel, table=True):
    """A billed day: a booking, a day attended without booking, or a late cancellation."""

    # "already billed?" is asked for every billable day of every run
    __table_args__ = (Index("ix_invoiceline_slot", "child_id", "unit_id", "day"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    invoice_id: int = Field(foreign_key="invoice.id", index=True)
    child_id: int = Field(foreign_key="child.id")
    unit_id: int = Field(foreign_key="unit.id")
    day: date
    kind: str = Field(max_length=15)  # booking, walk-in, late-cancel
    unit_price_cents: int
    amount_cents: int

    invoice: Optional[Invoice] = Relationship(back_populates="lines")


class Payment(SQLModel, table=True):
    """A payment of an invoice: online (a transaction with the provider) or at the counter."""

    id: Optional[int] = Field(default=None, primary_key=True)
    invoice_id: int = Field(foreign_key="invoice.id", index=True)
    family_id: int = Field(foreign_key="family.id", index=True)
    amount_cents: int
    method: str = Field(max_length=15)  # online, cash, cheque, cesu, transfer, direct-debit (billing.PAYMENT_METHODS)
    status: str = Field(default=PaymentStatus.PENDING, max_length=10, index=True)  # PaymentStatus
    # Online: our own id (in the return address), and the provider's (PayFiP's idop, SystemPay's id).
    transaction_id: Optional[str] = Field(default=None, max_length=100, unique=True)
    provider_reference: Optional[str] = Field(default=None, max_length=100, index=True)
    # Set when the provider confirmed a payment already expired or given up: for the régie to look at.
    anomaly: str = Field(default="", max_length=200)
    reference: str = Field(default="", max_length=100)  # cheque number, bank reference...
    recorded_by_id: Optional[int] = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)
    completed_at: Optional[datetime] = Field(default=None)


class Credit(SQLModel, table=True):
    """Money received beyond what an invoice owed (trop-perçu): two tabs both paid at the bank, an invoice
    cancelled after it was paid. Shown to the family; the régie refunds it or carries it to an invoice."""

    id: Optional[int] = Field(default=None, primary_key=True)
    family_id: int = Field(foreign_key="family.id", index=True)
    payment_id: int = Field(foreign_key="payment.id", unique=True)
    invoice_id: int = Field(foreign_key="invoice.id")
    amount_cents: int
    status: str = Field(default="open", max_length=10, index=True)  # open, refunded, carried
    reference: str = Field(default="", max_length=100)  # the refund's reference, or the invoice it went to
    created_at: datetime = Field(default_factory=utcnow)
    settled_at: Optional[datetime] = Field(default=None)


class Mandate(SQLModel, table=True):
    """A SEPA Core direct-debit mandate of a family: signed online by a parent (the consenting login)
    or on paper (recorded by an agent). ``rum``: its unique reference, printed in every debit.

    One mandate per family that is not revoked; a new IBAN amends it (the RUM stays, the next debit is
    a first one again), revoking it ends it for the next invoices.
    """

    __table_args__ = (Index("ix_mandate_family_live", "family_id", unique=True,
                            sqlite_where=text("status != 'revoked'"), postgresql_where=text("status != 'revoked'")),)

    id: Optional[int] = Field(default=None, primary_key=True)
    family_id: int = Field(foreign_key="family.id", index=True)
    rum: str = Field(max_length=35, unique=True)
    holder: str = Field(max_length=70)
    iban: str = Field(max_length=34)
    bic: str = Field(default="", max_length=11)
    bank_name: str = Field(default="", max_length=100)
    signed_on: date
    signed_by_id: Optional[int] = Field(default=None, foreign_key="user.id")  # the parent's login, online
    recorded_by_id: Optional[int] = Field(default=None, foreign_key="user.id")  # the agent, on paper
    status: str = Field(default=MandateStatus.ACTIVE, max_length=10)  # MandateStatus
    first_debit: bool = Field(default=True)  # the next debit is the first (SEPA sequence FRST) or not (RCUR)
    amended_at: Optional[datetime] = Field(default=None)
    previous_iban: str = Field(default="", max_length=34)
    revoked_at: Optional[datetime] = Field(default=None)
    created_at: datetime = Field(default_factory=utcnow)


class DebitBatch(SQLModel, table=True):
    """A direct-debit file (SEPA pain.008) the régie built for a collection date, as given to the bank."""

    id: Optional[int] = Field(default=None, primary_key=True)
    collection_on: date = Field(index=True)
    message_id: str = Field(max_length=35, unique=True)
    count: int
    total_cents: int
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_by_id: int = Field(foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)


class DebitLine(SQLModel, table=True):
    """One invoice debited in a file: its mandate, sequence and amount; a reject says why."""

    id: Optional[int] = Field(default=None, primary_key=True)
    batch_id: int = Field(foreign_key="debitbatch.id", index=True)
    invoice_id: int = Field(foreign_key="invoice.id", index=True)
    mandate_id: int = Field(foreign_key="mandate.id", index=True)
    payment_id: int = Field(foreign_key="payment.id", unique=True)
    end_to_end_id: str = Field(max_length=35, unique=True)
    sequence: str = Field(max_length=4)  # FRST or RCUR
    amount_cents: int
    rejected_at: Optional[datetime] = Field(default=None)
    reject_code: str = Field(default="", max_length=4)


class InvoiceReminder(SQLModel, table=True):
    """A reminder mailed for a past-due invoice: which step of the régie's schedule, and when."""

    __table_args__ = (UniqueConstraint("invoice_id", "step"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    invoice_id: int = Field(foreign_key="invoice.id", index=True)
    step: int  # the days after the due date of the schedule's step (7, 21...)
    sent_on: date


class EnrolmentRequest(SQLModel, table=True):
    """A parent's request to enrol a child in an establishment: pending, waitlist, accepted, refused.

    At most one request in progress (pending or on the waiting list) per child and establishment.
    """

    __table_args__ = (Index("ix_enrolmentrequest_live", "child_id", "establishment_id", unique=True,
                            sqlite_where=text("status IN ('pending', 'waitlist')"),
                            postgresql_where=text("status IN ('pending', 'waitlist')")),)

    id: Optional[int] = Field(default=None, primary_key=True)
    child_id: int = Field(foreign_key="child.id", index=True)
    family_id: int = Field(foreign_key="family.id", index=True)
    establishment_id: int = Field(foreign_key="establishment.id", index=True)
    status: str = Field(default="pending", max_length=10, index=True)
    rules_accepted: bool = Field(default=False)  # "J'ai lu le règlement intérieur"
    photos_ok: bool = Field(default=False)
    leave_alone: bool = Field(default=False)  # may leave alone at the end of the day (the older ones)
    requested_by_id: int = Field(foreign_key="user.id")
    requested_at: datetime = Field(default_factory=utcnow)
    decided_by_id: Optional[int] = Field(default=None, foreign_key="user.id")
    decided_at: Optional[datetime] = Field(default=None)
    message: str = Field(default="", max_length=500)


class DocumentType(SQLModel, table=True):
    """A paper the town asks for (attestation de QF, carnet de vaccination, assurance, PAI, jugement de
    garde), for the family or for each child, and how long one stays valid."""

    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    per_child: bool = Field(default=True)
    validity: str = Field(default="school_year", max_length=15)  # school_year, calendar_year, months, none
    months: int = Field(default=0)  # with validity "months"


class RequiredDocument(SQLModel, table=True):
    """A document an establishment requires; ``blocking``: booking waits for it, else a warning."""

    establishment_id: int = Field(foreign_key="establishment.id", primary_key=True)
    document_type_id: int = Field(foreign_key="documenttype.id", primary_key=True)
    blocking: bool = Field(default=False)


class Document(SQLModel, table=True):
    """A file a family sent (a PDF, or a photo re-encoded without its metadata), stored outside
    ``static/`` under a random name; its state: pending, valid (until ``valid_until``) or refused."""

    id: Optional[int] = Field(default=None, primary_key=True)
    family_id: int = Field(foreign_key="family.id", index=True)
    child_id: Optional[int] = Field(default=None, foreign_key="child.id", index=True)
    document_type_id: int = Field(foreign_key="documenttype.id")
    status: str = Field(default="pending", max_length=10, index=True)  # pending, valid, refused
    valid_until: Optional[date] = Field(default=None)
    file_name: str = Field(max_length=100)  # as the family named it, cleaned: shown, never a path
    stored_name: str = Field(max_length=64, unique=True)
    content_type: str = Field(max_length=30)
    size: int
    sha256: str = Field(max_length=64)
    uploaded_by_id: int = Field(foreign_key="user.id")
    uploaded_at: datetime = Field(default_factory=utcnow)
    decided_by_id: Optional[int] = Field(default=None, foreign_key="user.id")
    decided_at: Optional[datetime] = Field(default=None)
    message: str = Field(default="", max_length=500)
    reminded_on: Optional[date] = Field(default=None)  # the "expires soon" mail


class AuditEntry(SQLModel, table=True):
    """A change made by staff: who, when, what, the values before and after."""

    id: Optional[int] = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    action: str = Field(max_length=30)  # create, update
    target: str = Field(max_length=30)  # establishment, unit...
    target_id: int
    family_id: Optional[int] = Field(default=None, foreign_key="family.id", index=True)
    summary: str = Field(max_length=300)
    before: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    after: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Counter(SQLModel, table=True):
    """Number sequences that never skip or repeat (reservations per year, invoices...)."""

    name: str = Field(primary_key=True, max_length=30)
    value: int = Field(default=0)
