"""« Les Inscriptions »: a parent asks to enrol a child in an establishment the town opens to it; an
agent accepts (the child can book at once) or refuses with a message, mailed to every guardian.

An establishment may cap its enrolments: a request made when it is full waits on its list, in the order
of requests, and is accepted in that order when a place frees. A child has at most one request in
progress per establishment, and none once enrolled there.
"""
from __future__ import annotations

from datetime import date

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from models import Child, Enrollment, EnrolmentRequest, Establishment, utcnow
from services import audit, outbox

STATES = {"pending": ("En attente", "request"), "waitlist": ("Liste d'attente", "waitlist"),
          "accepted": ("Acceptée", "booked"), "refused": ("Refusée", "refused")}
LEAVE_ALONE_AGE = 8  # "partir seul" is asked for children of this age or more


class EnrolmentError(Exception):
    """A French message; nothing was written."""


def open_establishments(db: Session, today: date) -> list[Establishment]:
    """The establishments the town opens to online enrolment today."""
    return list(db.exec(select(Establishment).where(
        Establishment.enrolment_open == True,  # noqa: E712
        (Establishment.enrolment_until.is_(None)) | (Establishment.enrolment_until >= today))
        .order_by(Establishment.name)).all())


def age_on(child: Child, day: date) -> int:
    born = child.birth_date
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def enrolled_count(db: Session, establishment_id: int) -> int:
    return db.exec(select(func.count()).select_from(Enrollment).where(Enrollment.establishment_id == establishment_id)).one()


def ask(db: Session, user, child: Child, establishment: Establishment, today: date, rules: bool, photos: bool,
        leave_alone: bool) -> EnrolmentRequest:
    """The parent's request ("Envoyer la demande d'inscription"); committed. EnrolmentError: nothing written."""
    if establishment not in open_establishments(db, today):
        raise EnrolmentError(f"{establishment.name} ne prend pas d'inscription en ligne en ce moment.")
    if not rules:
        raise EnrolmentError("Cochez la case « J'ai lu le règlement intérieur » pour envoyer la demande.")
    if db.exec(select(Enrollment).where(Enrollment.child_id == child.id,
                                        Enrollment.establishment_id == establishment.id)).first():
        raise EnrolmentError(f"{child.first_name} est déjà inscrit(e) à {establishment.name}.")
    if live_request(db, child.id, establishment.id):
        raise EnrolmentError(f"Une demande d'inscription de {child.first_name} à {establishment.name} est déjà en cours.")
    full = establishment.enrolment_cap is not None and enrolled_count(db, establishment.id) >= establishment.enrolment_cap
    request = EnrolmentRequest(child_id=child.id, family_id=user.family_id, establishment_id=establishment.id,
                               status="waitlist" if full else "pending", requested_by_id=user.id,
                               rules_accepted=True, photos_ok=photos,
                               leave_alone=leave_alone and age_on(child, today) >= LEAVE_ALONE_AGE)
    db.add(request)
    try:
        db.commit()
    except IntegrityError:  # the same request sent twice at the same moment: the other one stands
        db.rollback()
        raise EnrolmentError(f"Une demande d'inscription de {child.first_name} à {establishment.name} est déjà en cours.") from None
    return request


def live_request(db: Session, child_id: int, establishment_id: int) -> EnrolmentRequest | None:
    return db.exec(select(EnrolmentRequest).where(EnrolmentRequest.child_id == child_id,
                                                  EnrolmentRequest.establishment_id == establishment_id,
                                                  EnrolmentRequest.status.in_(["pending", "waitlist"]))).first()


def waiting_rank(db: Session, request: EnrolmentRequest) -> int:
    """Its place on the establishment's waiting list (1: the next one)."""
    return db.exec(select(func.count()).select_from(EnrolmentRequest).where(
        EnrolmentRequest.establishment_id == request.establishment_id, EnrolmentRequest.status == "waitlist",
        EnrolmentRequest.id <= request.id)).one()


def family_requests(db: Session, family_id: int) -> list[EnrolmentRequest]:
    return list(db.exec(select(EnrolmentRequest).where(EnrolmentRequest.family_id == family_id)
                        .order_by(EnrolmentRequest.requested_at.desc())).all())


def establishment_names(db: Session, requests: list[EnrolmentRequest]) -> dict[int, str]:
    if not requests:
        return {}
    return dict(db.exec(select(Establishment.id, Establishment.name)
                        .where(Establishment.id.in_({r.establishment_id for r in requests}))).all())


def decide(db: Session, agent_id: int, request: EnrolmentRequest, accept: bool, message: str) -> EnrolmentRequest:
    """Accept (the child is enrolled, and can book at once) or refuse with a message; mailed; committed.

    A capped establishment accepts only while a place is free, and its waiting list in order."""
    if request.status not in ("pending", "waitlist"):
        raise EnrolmentError("Cette demande a déjà été traitée.")
    message = (message or "").strip()[:500]
    if not accept and not message:
        raise EnrolmentError("Indiquez à la famille le motif du refus.")
    establishment = db.get(Establishment, request.establishment_id)
    child = db.get(Child, request.child_id)
    if accept:
        if establishment.enrolment_cap is not None and enrolled_count(db, establishment.id) >= establishment.enrolment_cap:
            raise EnrolmentError(f"{establishment.name} est complet ({establishment.enrolment_cap} inscrits) : "
                                 "la demande reste sur la liste d'attente.")
        if request.status == "waitlist" and waiting_rank(db, request) > 1:
            raise EnrolmentError("La liste d'attente se traite dans l'ordre des demandes : acceptez d'abord la première.")
        db.add(Enrollment(child_id=child.id, establishment_id=establishment.id))
        if request.photos_ok != child.image_rights:
            child.image_rights = request.photos_ok
            db.add(child)
    request.status = "accepted" if accept else "refused"
    request.message, request.decided_by_id, request.decided_at = message, agent_id, utcnow()
    db.add(request)
    audit.record(db, agent_id, "update", "enrolment", request.id,
                 f"Inscription {'acceptée' if accept else 'refusée'} : {child.full_name} ({establishment.name})",
                 {"etat": "pending"}, {"etat": request.status, "message": message}, family_id=request.family_id)
    outbox.queue_family(db, request.family_id, f"Demande d'inscription {'acceptée' if accept else 'refusée'} : "
                        f"{child.first_name}", "enrolment_decided", enrolment=request, child=child,
                        establishment=establishment, accepted=accept)
    db.commit()
    return request
