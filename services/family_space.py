"""What "Mon compte famille" shows, read in three statements (issue 16): the family's file, its
reservations, its account with the régie.

The page is the first a parent sees after logging in, on the registration morning too: one statement
per block, not one per table (and none per reservation).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, distinct, func
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


def family_file(db: Session, family_id: int, user_id: int, now: datetime) -> FamilyFile | None:
    """The family with its guardians and children, its pending changes and the login change of
    ``user_id``: one statement."""
    login_change = (select(AuthToken.new_email)
                    .where(AuthToken.user_id == user_id, AuthToken.purpose == "email", AuthToken.used_at.is_(None),
                           AuthToken.superseded_at.is_(None), AuthToken.expires_at > now)
                    .order_by(AuthToken.id.desc()).limit(1).scalar_subquery())
    pending = and_(ChangeRequest.family_id == Family.id, ChangeRequest.status == ChangeStatus.PENDING,
                   ChangeRequest.target.in_(("family", "child")))
    requests_count = (select(func.count(EnrolmentRequest.id)).where(EnrolmentRequest.family_id == Family.id)
                      .scalar_subquery())
    rows = db.exec(select(Family, ChangeRequest, login_change, requests_count)
                   .outerjoin(ChangeRequest, pending)
                   .where(Family.id == family_id)
                   .options(joinedload(Family.guardians), joinedload(Family.own_children), joinedload(Family.shared_children))
                   .order_by(ChangeRequest.id)).unique().all()
    if not rows:
        return None
    requests = [request for _, request, _, _ in rows if request is not None]
    return FamilyFile(family=rows[0][0], login_change=rows[0][2], enrolment_requests=rows[0][3] or 0,
                      family_pending=next((r for r in requests if r.target == "family"), None),
                      child_requests=[r for r in requests if r.target == "child"])


def family_reservations(db: Session, family_id: int) -> list[FamilyReservation]:
    """The family's reservations, the latest first, with their period's name and what their lines
    became, counted in the database: one statement."""
    line = ReservationLine

    def counted(state):
        return func.sum(case((line.state == state, 1), else_=0))

    counts = (select(line.reservation_id.label("reservation_id"), func.count().label("boxes"),
                     func.count(distinct(line.day)).label("days"), counted(LineState.ACCEPTED).label("accepted"),
                     counted(LineState.PENDING).label("pending"), counted(LineState.REFUSED).label("refused"))
              .where(line.reservation_id.in_(select(Reservation.id).where(Reservation.family_id == family_id)))
              .group_by(line.reservation_id).subquery())
    rows = db.exec(select(Reservation, Period.name, counts.c.boxes, counts.c.days, counts.c.accepted,
                          counts.c.pending, counts.c.refused)
                   .join(Period, Period.id == Reservation.period_id)
                   .outerjoin(counts, counts.c.reservation_id == Reservation.id)
                   .where(Reservation.family_id == family_id)
                   .order_by(Reservation.created_at.desc(), Reservation.id.desc())).all()
    return [FamilyReservation(reservation=r, period_name=name, summary=summary_words(
                {LineState.ACCEPTED: accepted or 0, LineState.PENDING: pending or 0, LineState.REFUSED: refused or 0},
                boxes == days, r.kind == "cancellation"))
            for r, name, boxes, days, accepted, pending, refused in rows]


def family_account(db: Session, family_id: int) -> FamilyAccount:
    """The family's invoices, payments and credits (a payment and a credit always belong to an
    invoice): one statement."""
    rows = db.exec(select(Invoice, Payment, Credit)
                   .outerjoin(Payment, and_(Payment.invoice_id == Invoice.id, Payment.family_id == family_id))
                   .outerjoin(Credit, and_(Credit.invoice_id == Invoice.id, Credit.family_id == family_id))
                   .where(Invoice.family_id == family_id)).all()
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
