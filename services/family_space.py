"""What "Mon compte famille" shows, read in three statements (issue 16): the family's file, its
reservations, its account with the régie.

The page is the first a parent sees after logging in, on the registration morning too: one statement
per block, not one per table (and none per reservation).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, case, distinct, func
from sqlalchemy.orm import joinedload
from sqlmodel import Session, select

from models import (
    AuthToken,
    ChangeRequest,
    ChangeStatus,
    Credit,
    EnrolmentRequest,
    Family,
    Invoice,
    LineState,
    Payment,
    Period,
    Reservation,
    ReservationLine,
)
from services.planning.states import summary_words


@dataclass
class FamilyFile:
    family: Family  # its guardians and children loaded
    family_pending: ChangeRequest | None  # the change of the family's information waiting for an agent
    child_requests: list[ChangeRequest]  # changes of a child, or a new child, waiting for an agent
    login_change: str | None  # the new login waiting for its confirmation link
    enrolment_requests: int = 0  # how many enrolment requests the family ever made (0: none to load)


@dataclass
class FamilyReservation:
    reservation: Reservation
    period_name: str
    summary: str  # "13 jours acceptés, 4 en attente"


@dataclass
class FamilyAccount:
    invoices: list[Invoice]  # the latest month first
    payments: list[Payment]  # the latest first
    credits: list[Credit]


_family = bindparam("family")
_login_change = (select(AuthToken.new_email)
                 .where(AuthToken.user_id == bindparam("user"), AuthToken.purpose == "email", AuthToken.used_at.is_(None),
                        AuthToken.superseded_at.is_(None), AuthToken.expires_at > bindparam("now"))
                 .order_by(AuthToken.id.desc()).limit(1).scalar_subquery())
_pending = and_(ChangeRequest.family_id == Family.id, ChangeRequest.status == ChangeStatus.PENDING,
                ChangeRequest.target.in_(("family", "child")))
_requests_count = select(func.count(EnrolmentRequest.id)).where(EnrolmentRequest.family_id == Family.id).scalar_subquery()
# The page's three statements, built once (the first page of every login): each request gives their values.
FAMILY_FILE = (select(Family, ChangeRequest, _login_change, _requests_count)
               .outerjoin(ChangeRequest, _pending)
               .where(Family.id == _family)
               .options(joinedload(Family.guardians), joinedload(Family.own_children), joinedload(Family.shared_children))
               .order_by(ChangeRequest.id))


def family_file(db: Session, family_id: int, user_id: int, now: datetime) -> FamilyFile | None:
    """The family with its guardians and children, its pending changes and the login change of
    ``user_id``: one statement."""
    rows = db.exec(FAMILY_FILE, params={"family": family_id, "user": user_id, "now": now}).unique().all()
    if not rows:
        return None
    requests = [request for _, request, _, _ in rows if request is not None]
    return FamilyFile(family=rows[0][0], login_change=rows[0][2], enrolment_requests=rows[0][3] or 0,
                      family_pending=next((r for r in requests if r.target == "family"), None),
                      child_requests=[r for r in requests if r.target == "child"])


def _counted(state):
    return func.sum(case((ReservationLine.state == state, 1), else_=0))


_counts = (select(ReservationLine.reservation_id.label("reservation_id"), func.count().label("boxes"),
                  func.count(distinct(ReservationLine.day)).label("days"), _counted(LineState.ACCEPTED).label("accepted"),
                  _counted(LineState.PENDING).label("pending"), _counted(LineState.REFUSED).label("refused"))
           .where(ReservationLine.reservation_id.in_(select(Reservation.id).where(Reservation.family_id == _family)))
           .group_by(ReservationLine.reservation_id).subquery())
FAMILY_RESERVATIONS = (select(Reservation, Period.name, _counts.c.boxes, _counts.c.days, _counts.c.accepted,
                              _counts.c.pending, _counts.c.refused)
                       .join(Period, Period.id == Reservation.period_id)
                       .outerjoin(_counts, _counts.c.reservation_id == Reservation.id)
                       .where(Reservation.family_id == _family)
                       .order_by(Reservation.created_at.desc(), Reservation.id.desc()))


def family_reservations(db: Session, family_id: int) -> list[FamilyReservation]:
    """The family's reservations, the latest first, with their period's name and what their lines
    became, counted in the database: one statement."""
    rows = db.exec(FAMILY_RESERVATIONS, params={"family": family_id}).all()
    return [FamilyReservation(reservation=r, period_name=name, summary=summary_words(
                {LineState.ACCEPTED: accepted or 0, LineState.PENDING: pending or 0, LineState.REFUSED: refused or 0},
                boxes == days, r.kind == "cancellation"))
            for r, name, boxes, days, accepted, pending, refused in rows]


FAMILY_ACCOUNT = (select(Invoice, Payment, Credit)
                  .outerjoin(Payment, and_(Payment.invoice_id == Invoice.id, Payment.family_id == _family))
                  .outerjoin(Credit, and_(Credit.invoice_id == Invoice.id, Credit.family_id == _family))
                  .where(Invoice.family_id == _family))


def family_account(db: Session, family_id: int) -> FamilyAccount:
    """The family's invoices, payments and credits (a payment and a credit always belong to an
    invoice): one statement."""
    rows = db.exec(FAMILY_ACCOUNT, params={"family": family_id}).all()
    invoices, payments, credits = {}, {}, {}
    for invoice, payment, credit in rows:
        invoices[invoice.id] = invoice
        if payment is not None:
            payments[payment.id] = payment
        if credit is not None:
            credits[credit.id] = credit
    return FamilyAccount(
        invoices=sorted(invoices.values(), key=lambda i: (i.month, i.id), reverse=True),
        payments=sorted(payments.values(), key=lambda p: (p.created_at, p.id), reverse=True),
        credits=sorted(credits.values(), key=lambda c: (c.created_at, c.id), reverse=True))
