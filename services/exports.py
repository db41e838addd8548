"""CSV exports for staff: families, children with their health notes, the bookings of a period.

Written by services/csvfile.py, which escapes every cell a spreadsheet would run.
"""
from __future__ import annotations

from sqlmodel import Session, select

from models import Booking, Child, Family, Guardian, Period, PeriodUnit, Unit, User
from services.csvfile import to_csv

BOOKING_WORDS = {"accepted": "Réservé", "request": "Demande en attente", "waitlist": "Liste d'attente"}


def families_csv(db: Session) -> str:
    families = db.exec(select(Family).order_by(Family.name, Family.id)).all()
    guardians: dict[int, list[Guardian]] = {}
    for g in db.exec(select(Guardian).order_by(Guardian.position)):
        guardians.setdefault(g.family_id, []).append(g)
    logins: dict[int, list[str]] = {}
    for u in db.exec(select(User).where(User.family_id.is_not(None)).order_by(User.email)):
        logins.setdefault(u.family_id, []).append(u.email + ("" if u.active else " (désactivé)"))
    children: dict[int, list[str]] = {}
    for c in db.exec(select(Child).order_by(Child.birth_date)):
        children.setdefault(c.family_id, []).append(c.first_name)

    def guardian(f, i):
        gs = guardians.get(f.id, [])
        if len(gs) <= i:
            return ["", "", ""]
        g = gs[i]
        return [f"{g.title} {g.first_name} {g.last_name}".strip(), g.phone_mobile, g.email]

    return to_csv(
        ["N° famille", "Famille", "Adresse", "Code postal", "Commune", "Téléphone du domicile", "QF", "QF valable jusqu'au",
         "Régime", "N° allocataire", "Responsable 1", "Mobile 1", "Mail 1", "Responsable 2", "Mobile 2", "Mail 2",
         "Identifiants", "Enfants"],
        ([f.id, f.name, " ".join(filter(None, [f.address_line, f.address_extra])), f.postcode, f.city, f.phone_home,
          f.qf if f.qf is not None else "", f.qf_valid_until.strftime("%d/%m/%Y") if f.qf_valid_until else "",
          f.allowance_scheme, f.allowance_number, *guardian(f, 0), *guardian(f, 1),
          ", ".join(logins.get(f.id, [])), ", ".join(children.get(f.id, []))] for f in families),
    )


def children_csv(db: Session) -> str:
    rows = db.exec(select(Child, Family).join(Family, Family.id == Child.family_id)
                   .order_by(Child.last_name, Child.first_name, Child.id)).all()
    return to_csv(
        ["Nom", "Prénom", "Né(e) le", "Famille", "École", "Classe", "Allergies", "PAI", "Informations médicales",
         "Médecin", "Téléphone du médecin", "Personnes autorisées", "Droit à l'image"],
        ([c.last_name, c.first_name, c.birth_date.strftime("%d/%m/%Y"), f.name, c.school, c.school_class, c.allergies,
          (c.pai_details or "oui") if c.has_pai else "non", c.medical_notes, c.doctor_name, c.doctor_phone,
          c.pickup_persons.replace("\n", " / "), "oui" if c.image_rights else "non"] for c, f in rows),
    )


def period_bookings_csv(db: Session, period: Period) -> str:
    unit_ids = select(PeriodUnit.unit_id).where(PeriodUnit.period_id == period.id)
    rows = db.exec(
        select(Booking, Child, Unit, Family)
        .join(Child, Child.id == Booking.child_id).join(Unit, Unit.id == Booking.unit_id)
        .join(Family, Family.id == Child.family_id)
        .where(Booking.unit_id.in_(unit_ids), Booking.day >= period.start_date, Booking.day <= period.end_date)
        .order_by(Booking.day, Unit.position, Child.last_name, Child.first_name)
    ).all()
    return to_csv(
        ["Date", "Unité", "Nom", "Prénom", "Classe", "Famille", "Statut", "Annulation demandée"],
        ([b.day.strftime("%d/%m/%Y"), u.label, c.last_name, c.first_name, c.school_class, f.name,
          BOOKING_WORDS[b.status], "oui" if b.cancel_line_id else ""] for b, c, u, f in rows),
    )
