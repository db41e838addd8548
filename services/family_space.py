"""What "Mon compte famille" shows, read in three statements (issue 16): the family's file, its
reservations, its account with the régie.

The page is the first a parent sees after logging in, on the registration morning too: one statement
per block, not one per table (and none per reservation).
"""
from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, case, distinct, func, union_all
from sqlmodel import Session, select

from models import (
    AuthToken,
    ChangeRequest,
    ChangeStatus,
    Child,
    ChildHousehold,
    Credit,
    EnrolmentRequest,
    Family,
    Guardian,
    Invoice,
    LineState,
    Payment,
    Period,
    Reservation,
    ReservationLine,
)
from services.planning.states import summary_words

# What the page shows of each, read as plain rows (the page only reads them: no ORM object to build).
FAMILY_FIELDS = (Family.id, Family.name, Family.address_line, Family.address_extra, Family.postcode, Family.city,
                 Family.qf, Family.qf_valid_until)
GUARDIAN_FIELDS = (Guardian.id, Guardian.position, Guardian.title, Guardian.first_name, Guardian.last_name,
                   Guardian.phone_mobile)
CHILD_FIELDS = (Child.id, Child.first_name, Child.last_name, Child.birth_date, Child.sex, Child.school_class)
REQUEST_FIELDS = (ChangeRequest.id, ChangeRequest.target, ChangeRequest.child_id, ChangeRequest.after)
RESERVATION_FIELDS = (Reservation.id, Reservation.number, Reservation.child_id, Reservation.kind, Reservation.absence,
                      Reservation.status)
FamilyRow = namedtuple("FamilyRow", [c.key for c in FAMILY_FIELDS])
GuardianRow = namedtuple("GuardianRow", [c.key for c in GUARDIAN_FIELDS])
ChildRow = namedtuple("ChildRow", [c.key for c in CHILD_FIELDS])
RequestRow = namedtuple("RequestRow", [c.key for c in REQUEST_FIELDS])
ReservationRow = namedtuple("ReservationRow", [c.key for c in RESERVATION_FIELDS])
INVOICE_FIELDS = (Invoice.id, Invoice.number, Invoice.month, Invoice.due_on, Invoice.total_cents, Invoice.paid_cents,
                  Invoice.cancelled, Invoice.debit_on, Invoice.debit_state)
PAYMENT_FIELDS = (Payment.id, Payment.invoice_id, Payment.created_at, Payment.method, Payment.amount_cents, Payment.status)
CREDIT_FIELDS = (Credit.id, Credit.invoice_id, Credit.created_at, Credit.amount_cents, Credit.status, Credit.reference)
PaymentRow = namedtuple("PaymentRow", [c.key for c in PAYMENT_FIELDS])
CreditRow = namedtuple("CreditRow", [c.key for c in CREDIT_FIELDS])


class InvoiceRow(namedtuple("InvoiceRow", [c.key for c in INVOICE_FIELDS])):
    """An invoice as the page reads it, with the model's own rules of its state and direct debit."""

    __slots__ = ()
    state = Invoice.state
    left_cents = Invoice.left_cents
    debit_note = Invoice.debit_note


@dataclass
class FamilyFile:
    family: FamilyRow
    guardians: list[GuardianRow]  # by position
    children: list[ChildRow]  # its own and those it shares with another household, the eldest first
    family_pending: RequestRow | None  # the change of the family's information waiting for an agent
    child_requests: list[RequestRow]  # changes of a child, or a new child, waiting for an agent
    login_change: str | None  # the new login waiting for its confirmation link
    enrolment_requests: int = 0  # how many enrolment requests the family ever made (0: none to load)


@dataclass
class FamilyReservation:
    reservation: ReservationRow
    period_name: str
    summary: str  # "13 jours acceptés, 4 en attente"


@dataclass
class FamilyAccount:
    invoices: list[InvoiceRow]  # the latest month first
    payments: list[PaymentRow]  # the latest first
    credits: list[CreditRow]


_family = bindparam("family")
_login_change = (select(AuthToken.new_email)
                 .where(AuthToken.user_id == bindparam("user"), AuthToken.purpose == "email", AuthToken.used_at.is_(None),
                        AuthToken.superseded_at.is_(None), AuthToken.expires_at > bindparam("now"))
                 .order_by(AuthToken.id.desc()).limit(1).scalar_subquery())
_pending = and_(ChangeRequest.family_id == Family.id, ChangeRequest.status == ChangeStatus.PENDING,
                ChangeRequest.target.in_(("family", "child")))
_requests_count = select(func.count(EnrolmentRequest.id)).where(EnrolmentRequest.family_id == Family.id).scalar_subquery()
# The household's children: the files it opened, and those it shares (each arm uses its family_id index).
_children = union_all(select(Child.id.label("child_id"), Child.family_id.label("family_id")),
                      select(ChildHousehold.child_id, ChildHousehold.family_id)).subquery()
# The page's three statements, built once (the first page of every login): each request gives their values.
# This one is a row per guardian × child × pending change (a few): family_file sorts them out.
FAMILY_FILE = (select(*FAMILY_FIELDS, _login_change, _requests_count, *GUARDIAN_FIELDS, *CHILD_FIELDS, *REQUEST_FIELDS)
               .outerjoin(Guardian, Guardian.family_id == Family.id)
               .outerjoin(_children, _children.c.family_id == Family.id)
               .outerjoin(Child, Child.id == _children.c.child_id)
               .outerjoin(ChangeRequest, _pending)
               .where(Family.id == _family))
_GUARDIAN_AT = len(FAMILY_FIELDS) + 2
_CHILD_AT = _GUARDIAN_AT + len(GUARDIAN_FIELDS)
_REQUEST_AT = _CHILD_AT + len(CHILD_FIELDS)


def family_file(db: Session, family_id: int, user_id: int, now: datetime) -> FamilyFile | None:
    """The family with its guardians and children, its pending changes and the login change of
    ``user_id``: one statement."""
    rows = db.connection().execute(FAMILY_FILE, {"family": family_id, "user": user_id, "now": now}).all()
    if not rows:
        return None
    guardians, children, requests = {}, {}, {}
    for row in rows:
        if row[_GUARDIAN_AT] is not None:
            guardians[row[_GUARDIAN_AT]] = GuardianRow(*row[_GUARDIAN_AT:_CHILD_AT])
        if row[_CHILD_AT] is not None:
            children[row[_CHILD_AT]] = ChildRow(*row[_CHILD_AT:_REQUEST_AT])
        if row[_REQUEST_AT] is not None:
            requests[row[_REQUEST_AT]] = RequestRow(*row[_REQUEST_AT:])
    first, pending = rows[0], sorted(requests.values(), key=lambda r: r.id)
    return FamilyFile(family=FamilyRow(*first[:len(FAMILY_FIELDS)]),
                      guardians=sorted(guardians.values(), key=lambda g: g.position),
                      children=sorted(children.values(), key=lambda c: (c.birth_date, c.id)),
                      login_change=first[len(FAMILY_FIELDS)], enrolment_requests=first[len(FAMILY_FIELDS) + 1] or 0,
                      family_pending=next((r for r in pending if r.target == "family"), None),
                      child_requests=[r for r in pending if r.target == "child"])


def _counted(state):
    return func.sum(case((ReservationLine.state == state, 1), else_=0))


_counts = (select(ReservationLine.reservation_id.label("reservation_id"), func.count().label("boxes"),
                  func.count(distinct(ReservationLine.day)).label("days"), _counted(LineState.ACCEPTED).label("accepted"),
                  _counted(LineState.PENDING).label("pending"), _counted(LineState.REFUSED).label("refused"))
           .where(ReservationLine.reservation_id.in_(select(Reservation.id).where(Reservation.family_id == _family)))
           .group_by(ReservationLine.reservation_id).subquery())
FAMILY_RESERVATIONS = (select(*RESERVATION_FIELDS, Period.name, _counts.c.boxes, _counts.c.days, _counts.c.accepted,
                              _counts.c.pending, _counts.c.refused)
                       .join(Period, Period.id == Reservation.period_id)
                       .outerjoin(_counts, _counts.c.reservation_id == Reservation.id)
                       .where(Reservation.family_id == _family)
                       .order_by(Reservation.created_at.desc(), Reservation.id.desc()))


def family_reservations(db: Session, family_id: int) -> list[FamilyReservation]:
    """The family's reservations, the latest first, with their period's name and what their lines
    became, counted in the database: one statement."""
    rows = db.connection().execute(FAMILY_RESERVATIONS, {"family": family_id}).all()
    reservations = []
    for row in rows:
        r = ReservationRow(*row[:len(RESERVATION_FIELDS)])
        name, boxes, days, accepted, pending, refused = row[len(RESERVATION_FIELDS):]
        reservations.append(FamilyReservation(reservation=r, period_name=name, summary=summary_words(
            {LineState.ACCEPTED: accepted or 0, LineState.PENDING: pending or 0, LineState.REFUSED: refused or 0},
            boxes == days, r.kind == "cancellation")))
    return reservations


FAMILY_ACCOUNT = (select(*INVOICE_FIELDS, *PAYMENT_FIELDS, *CREDIT_FIELDS)
                  .outerjoin(Payment, and_(Payment.invoice_id == Invoice.id, Payment.family_id == _family))
                  .outerjoin(Credit, and_(Credit.invoice_id == Invoice.id, Credit.family_id == _family))
                  .where(Invoice.family_id == _family))
_PAYMENT_AT = len(INVOICE_FIELDS)
_CREDIT_AT = _PAYMENT_AT + len(PAYMENT_FIELDS)


def family_account(db: Session, family_id: int) -> FamilyAccount:
    """The family's invoices, payments and credits (a payment and a credit always belong to an
    invoice): one statement, a row per invoice × its payments × its credits."""
    rows = db.connection().execute(FAMILY_ACCOUNT, {"family": family_id}).all()
    invoices, payments, credits = {}, {}, {}
    for row in rows:
        invoices[row[0]] = InvoiceRow(*row[:_PAYMENT_AT])
        if row[_PAYMENT_AT] is not None:
            payments[row[_PAYMENT_AT]] = PaymentRow(*row[_PAYMENT_AT:_CREDIT_AT])
        if row[_CREDIT_AT] is not None:
            credits[row[_CREDIT_AT]] = CreditRow(*row[_CREDIT_AT:])
    return FamilyAccount(
        invoices=sorted(invoices.values(), key=lambda i: (i.month, i.id), reverse=True),
        payments=sorted(payments.values(), key=lambda p: (p.created_at, p.id), reverse=True),
        credits=sorted(credits.values(), key=lambda c: (c.created_at, c.id), reverse=True))
