"""Shared custody ("garde alternée"): a child's second household, linked and unlinked by an agent.

The child's file stays with the household that opened it (``Child.family_id``); the second one gets a
``ChildHousehold`` link. Each household then books the child from its own space, on its own draft,
and is billed for its own days at its own QF; the record (identity, health, PAI) is shared, the pick-up
persons are each household's. See ``services.family.in_household`` for how access follows the link.
"""
from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from models import Booking, Child, ChildHousehold, Draft, DraftLine, Family, utcnow
from services import audit, outbox
from services.calendar import paris_today
from services.family import open_family


class HouseholdError(Exception):
    """A link the rules refuse; the message is French and shown as is."""


def second_household(db: Session, child: Child) -> Family | None:
    return db.exec(select(Family).join(ChildHousehold, ChildHousehold.family_id == Family.id)
                   .where(ChildHousehold.child_id == child.id)).first()


def _none_yet(db: Session, child: Child) -> None:
    """A child has two households at most: refused when it has its second already."""
    current = second_household(db, child)
    if current is not None:
        raise HouseholdError(f"{child.first_name} a déjà un second foyer (famille {current.name}) : "
                             "retirez-le avant d'en rattacher un autre.")


def link(db: Session, agent_id: int, child: Child, family: Family) -> ChildHousehold:
    """Make ``family`` the child's second household; both households are told. Committed."""
    if family.id == child.family_id:
        raise HouseholdError(f"{child.first_name} est déjà dans le dossier de la famille {family.name}.")
    _none_yet(db, child)
    made = ChildHousehold(child_id=child.id, family_id=family.id, created_by_id=agent_id)
    db.add(made)
    try:
        db.flush()
    except IntegrityError:  # the same link made by another agent at the same moment
        db.rollback()
        raise HouseholdError(f"{child.first_name} a déjà un second foyer.") from None
    first = db.get(Family, child.family_id)
    for family_id in (child.family_id, family.id):
        audit.record(db, agent_id, "link", "child", child.id,
                     f"Garde alternée : {child.full_name} rattaché(e) aussi à la famille {family.name}",
                     after={"foyers": [first.name, family.name]}, family_id=family_id)
    outbox.queue_family(db, family.id, f"{child.first_name} est rattaché(e) à votre dossier", "household_linked",
                        child=child, joined=True)
    outbox.queue_family(db, child.family_id, f"{child.first_name} : garde alternée enregistrée", "household_linked",
                        child=child, joined=False)
    db.commit()
    return made


def link_new(db: Session, hasher, agent_id: int, child: Child, name: str, guardian: dict, email: str,
             town_name: str) -> Family:
    """Open the second household's file with its first parent (invited by mail), then link the child."""
    _none_yet(db, child)
    family, _ = open_family(db, hasher, agent_id, name, guardian, email, town_name)
    link(db, agent_id, child, family)
    return family


def unlink(db: Session, agent_id: int, child: Child, family: Family) -> None:
    """End the second household's link. Refused while it holds days to come: they are cancelled first
    (its past days stay billed to it). Its drafts of the child go. Committed."""
    made = db.exec(select(ChildHousehold).where(ChildHousehold.child_id == child.id,
                                                ChildHousehold.family_id == family.id)).first()
    if made is None:
        raise HouseholdError(f"La famille {family.name} n'est pas un foyer de {child.first_name}.")
    ahead = db.exec(select(Booking.id).where(Booking.child_id == child.id, Booking.family_id == family.id,
                                             Booking.day >= paris_today(utcnow()))).first()
    if ahead is not None:
        raise HouseholdError(f"La famille {family.name} a encore des jours réservés pour {child.first_name} : "
                             "annulez-les d'abord.")
    drafts = select(Draft.id).where(Draft.child_id == child.id, Draft.family_id == family.id)
    db.execute(delete(DraftLine).where(DraftLine.draft_id.in_(drafts)))
    db.execute(delete(Draft).where(Draft.child_id == child.id, Draft.family_id == family.id))
    db.delete(made)
    for family_id in (child.family_id, family.id):
        audit.record(db, agent_id, "unlink", "child", child.id,
                     f"Garde alternée terminée : {child.full_name} n'est plus rattaché(e) à la famille {family.name}",
                     family_id=family_id)
    db.commit()
