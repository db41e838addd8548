"""Family and child records, and the changes parents ask for, validated by an agent."""
from __future__ import annotations

from datetime import date

from sqlmodel import Session, select

from models import ChangeRequest, ChangeStatus, Child, ChildHousehold, Family, Guardian, User, utcnow
from services import accounts, audit, outbox
from services.formatting import date_short
from services.security import log_event

FAMILY_FIELDS = {
    "address_line": "Adresse",
    "address_extra": "Complément d'adresse",
    "postcode": "Code postal",
    "city": "Commune",
    "phone_home": "Téléphone du domicile",
    "qf": "Quotient familial",
    "qf_valid_until": "Quotient familial valable jusqu'au",
    "allowance_scheme": "Régime (CAF ou MSA)",
    "allowance_number": "Numéro d'allocataire",
    "payer_position": "Responsable payeur",
}
GUARDIAN_FIELDS = {
    "title": "Civilité",
    "last_name": "Nom",
    "first_name": "Prénom",
    "relationship": "Lien avec l'enfant",
    "phone_mobile": "Téléphone portable",
    "phone_work": "Téléphone professionnel",
    "email": "Adresse mail",
    "employer": "Employeur",
}
CHILD_FIELDS = {
    "last_name": "Nom",
    "first_name": "Prénom",
    "birth_date": "Date de naissance",
    "sex": "Sexe",
    "school": "École",
    "school_class": "Classe",
    "allergies": "Allergies",
    "has_pai": "PAI (projet d'accueil individualisé)",
    "pai_details": "Détails du PAI",
    "medical_notes": "Informations médicales",
    "doctor_name": "Médecin traitant",
    "doctor_phone": "Téléphone du médecin",
    "pickup_persons": "Personnes autorisées à venir chercher l'enfant",
    "image_rights": "Droit à l'image",
}
DATE_FIELDS = {"qf_valid_until", "birth_date"}


def _plain(value):
    return value.isoformat() if isinstance(value, date) else value


def family_snapshot(family: Family) -> dict:
    """The family file as plain JSON values: {"family": {...}, "guardians": [g1, g2]}."""
    guardians = {g.position: g for g in family.guardians}
    return {
        "family": {name: _plain(getattr(family, name)) for name in FAMILY_FIELDS},
        "guardians": [
            {name: getattr(guardians[p], name) for name in GUARDIAN_FIELDS} if p in guardians else None
            for p in (1, 2)
        ],
    }


def child_snapshot(child: Child | None, household: ChildHousehold | None = None) -> dict:
    """The child's record as plain JSON values; ``household``: the link of a second household (shared
    custody), whose own pick-up persons are shown instead of the first household's."""
    if child is None:
        return {}
    snapshot = {name: _plain(getattr(child, name)) for name in CHILD_FIELDS}
    if household is not None:
        snapshot["pickup_persons"] = household.pickup_persons
    return snapshot


def household_link(db: Session, child: Child, family_id: int) -> ChildHousehold | None:
    """The shared-custody link when ``family_id`` is the child's second household, else None."""
    if child.family_id == family_id:
        return None
    return db.exec(select(ChildHousehold).where(ChildHousehold.child_id == child.id,
                                                ChildHousehold.family_id == family_id)).first()


def pending_child_request(db: Session, child_id: int, family_id: int) -> ChangeRequest | None:
    """The household's change of this child waiting for an agent (each household files its own)."""
    return db.exec(select(ChangeRequest).where(ChangeRequest.child_id == child_id, ChangeRequest.family_id == family_id,
                                               ChangeRequest.status == ChangeStatus.PENDING)).first()


def display_value(name: str, value) -> str:
    """A stored value as an agent or parent reads it."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "Oui" if value else "Non"
    if name in DATE_FIELDS:
        return date_short(date.fromisoformat(value))
    if name == "sex":
        return {"F": "Fille", "M": "Garçon"}.get(value, value)
    if name == "payer_position":
        return f"Responsable légal {value}"
    if name == "qf":
        return f"{value} €"
    return str(value)


def diff_rows(req: ChangeRequest) -> list[dict]:
    """Rows {label, before, after, changed} to show a request as before/after."""
    rows = []
    if req.target == "family":
        before, after = req.before or {}, req.after or {}
        for name, label in FAMILY_FIELDS.items():
            b = (before.get("family") or {}).get(name)
            a = (after.get("family") or {}).get(name)
            rows.append(_row(label, name, b, a))
        for index in (0, 1):
            bg = (before.get("guardians") or [None, None])[index] or {}
            ag = (after.get("guardians") or [None, None])[index] or {}
            for name, label in GUARDIAN_FIELDS.items():
                rows.append(_row(f"Responsable légal {index + 1} — {label}", name, bg.get(name), ag.get(name)))
    else:
        for name, label in CHILD_FIELDS.items():
            rows.append(_row(label, name, (req.before or {}).get(name), (req.after or {}).get(name)))
    return rows


def _row(label, name, before, after) -> dict:
    return {
        "label": label,
        "before": display_value(name, before),
        "after": display_value(name, after),
        "changed": (before or "") != (after or ""),
    }


def pending_family_request(db: Session, family_id: int) -> ChangeRequest | None:
    return db.exec(
        select(ChangeRequest).where(
            ChangeRequest.family_id == family_id,
            ChangeRequest.target == "family",
            ChangeRequest.status == ChangeStatus.PENDING,
        )
    ).first()


def request_family_change(db: Session, user: User, family: Family, after: dict) -> ChangeRequest | None:
    """File (or update) the family's pending change. None when nothing differs from the file."""
    before = family_snapshot(family)
    pending = pending_family_request(db, family.id)
    if after == before:
        if pending:  # the parent went back to what is on file: nothing left to validate
            db.delete(pending)
            db.commit()
        return None
    req = pending or ChangeRequest(family_id=family.id, target="family", requested_by_id=user.id)
    req.before, req.after = before, after
    req.requested_by_id, req.requested_at = user.id, utcnow()
    db.add(req)
    db.commit()
    return req


def request_child_change(
    db: Session, user: User, family: Family, child: Child | None, after: dict
) -> ChangeRequest | None:
    """File a new child (``child`` None) or a change to one; updates the household's pending change of
    that child (a child in shared custody: each household files its own, the same agents decide)."""
    before = child_snapshot(child, household_link(db, child, family.id) if child is not None else None)
    pending = None
    if child is not None:
        pending = pending_child_request(db, child.id, family.id)
        if after == before:
            if pending:
                db.delete(pending)
                db.commit()
            return None
    req = pending or ChangeRequest(
        family_id=family.id, target="child", child_id=child.id if child else None, requested_by_id=user.id
    )
    req.before, req.after = before, after
    req.requested_by_id, req.requested_at = user.id, utcnow()
    db.add(req)
    db.commit()
    return req


def pending_requests(db: Session) -> list[ChangeRequest]:
    """Every change waiting for an agent, oldest first."""
    return list(
        db.exec(select(ChangeRequest).where(ChangeRequest.status == ChangeStatus.PENDING).order_by(ChangeRequest.requested_at))
    )


def _from_plain(name: str, value):
    if name in DATE_FIELDS and value:
        return date.fromisoformat(value)
    return value


def validate(db: Session, agent: User, req: ChangeRequest, message: str = "") -> bool:
    """Apply a pending change to the file. False when it was already decided (a replayed form)."""
    if req.status != ChangeStatus.PENDING:
        return False
    family = db.get(Family, req.family_id)
    if req.target == "family":
        for name, value in req.after["family"].items():
            if name in FAMILY_FIELDS:
                setattr(family, name, _from_plain(name, value))
        current = {g.position: g for g in family.guardians}
        for position, data in zip((1, 2), req.after["guardians"]):
            guardian = current.get(position)
            if data is None:
                if guardian is not None:
                    family.guardians.remove(guardian)
                continue
            if guardian is None:
                guardian = Guardian(family_id=family.id, position=position, first_name="", last_name="")
                family.guardians.append(guardian)
            for name, value in data.items():
                if name in GUARDIAN_FIELDS:
                    setattr(guardian, name, value)
        db.add(family)
    else:
        child = db.get(Child, req.child_id) if req.child_id else Child(family_id=family.id, first_name="", last_name="", birth_date=date.today())
        link = household_link(db, child, family.id) if req.child_id else None
        before = req.before or {}
        for name, value in req.after.items():
            # only what the parent changed: the other household's change validated meanwhile stays
            if name not in CHILD_FIELDS or (req.child_id and before.get(name) == value):
                continue
            setattr(link if link is not None and name == "pickup_persons" else child, name, _from_plain(name, value))
        db.add(child)
        if link is not None:
            db.add(link)
        db.flush()
        req.child_id = child.id
    _decide(db, agent, req, "validated", message)
    return True


def refuse(db: Session, agent: User, req: ChangeRequest, message: str) -> bool:
    """Refuse a pending change; the file is untouched. False when it was already decided."""
    if req.status != ChangeStatus.PENDING:
        return False
    _decide(db, agent, req, "refused", message)
    return True


def _decide(db: Session, agent: User, req: ChangeRequest, status: str, message: str) -> None:
    req.status, req.message = status, message
    req.decided_by_id, req.decided_at = agent.id, utcnow()
    db.add(req)
    family = db.get(Family, req.family_id)
    subject_of = {
        "family": "les informations de la famille",
        "child": f"la fiche de {req.after.get('first_name', 'votre enfant')}",
    }
    what = subject_of[req.target]
    verdict = "validée" if status == "validated" else "refusée"
    rows = [r for r in diff_rows(req) if r["changed"]]
    outbox.queue_family(db, family.id, f"Votre modification a été {verdict}", "change_decided", what=what,
                        validated=status == "validated", message=message, rows=rows)
    if req.target == "child" and req.child_id and status == "validated":
        # shared custody: the other household is told what changed in the record it shares
        shared = [r for r in rows if r["label"] != CHILD_FIELDS["pickup_persons"]]
        for other in households_of(db, req.child_id):
            if other != family.id and shared:
                outbox.queue_family(db, other, f"La fiche de {req.after.get('first_name', 'votre enfant')} a été modifiée",
                                    "child_changed_by_other", what=what, rows=shared)
    db.commit()


def family_of(db: Session, user: User) -> Family | None:
    return db.get(Family, user.family_id) if user.family_id else None


def in_household(family_id):
    """The condition that the ``Child`` of a query is this household's: its own file, or shared with it
    (shared custody). ``family_id`` a value or a bound parameter."""
    return (Child.family_id == family_id) | Child.id.in_(
        select(ChildHousehold.child_id).where(ChildHousehold.family_id == family_id))


def child_of_family(db: Session, family_id: int, child_id: int) -> Child | None:
    """The child, only when it belongs to the household (else None: the view answers 404)."""
    return db.exec(select(Child).where(Child.id == child_id, in_household(family_id))).first()


def household_children(db: Session, family_id: int) -> dict[int, Child]:
    """The household's children by id, those it shares with another household included."""
    return {c.id: c for c in db.exec(select(Child).where(in_household(family_id)).order_by(Child.birth_date))}


def households_of(db: Session, child_id: int) -> list[int]:
    """The ids of the child's households: its file's first, then the one it shares custody with."""
    child = db.get(Child, child_id)
    return [child.family_id, *db.exec(select(ChildHousehold.family_id).where(ChildHousehold.child_id == child_id)
                                      .order_by(ChildHousehold.id))]


def open_family(db: Session, hasher, admin_id: int, name: str, guardian: dict, email: str,
                town_name: str) -> tuple[Family, User]:
    """A new family file with its first guardian and parent login; the parent gets the link to choose
    a password and completes the file. ``guardian``: title, first_name, last_name, phone_mobile."""
    family = Family(name=name)
    db.add(family)
    db.flush()
    db.add(Guardian(family_id=family.id, position=1, email=accounts.normalize_email(email), **guardian))
    user, token = accounts.create_account(db, hasher, email, "parent", guardian["first_name"], guardian["last_name"],
                                          family.id)
    outbox.queue_invite(db, user, token, town_name)
    log_event("account.created", target=user.email, role="parent", family=family.id)
    audit.record(db, admin_id, "create", "family", family.id, f"Famille créée : {family.name}, compte {user.email}",
                 after={"famille": family.name, "email": user.email}, family_id=family.id)
    db.commit()
    return family, user
