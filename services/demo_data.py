"""The demo town, relative to today so that it never goes stale (`flask seed-demo`)."""
from __future__ import annotations

from datetime import date, timedelta

from argon2 import PasswordHasher
from sqlmodel import Session, select

from models import Child, Family, Guardian, User
from services import family as family_service

# Logins shown in the README; a town's real data never uses the .test domain.
DEMO_ACCOUNTS = {
    "parent@demo.test": "parent-demo-ribambelle",
    "parent2@demo.test": "parent2-demo-ribambelle",
    "famille2@demo.test": "famille2-demo-ribambelle",
    "agent@demo.test": "agent-demo-ribambelle",
}


def _years_ago(today: date, years: int, days: int = 0) -> date:
    try:
        d = today.replace(year=today.year - years)
    except ValueError:  # 29 February
        d = today.replace(year=today.year - years, day=28)
    return d - timedelta(days=days)


def seed(db: Session, hasher: PasswordHasher, force: bool = False, today: date | None = None) -> bool:
    """Load the demo families, children and staff. False (nothing done) if there are users already."""
    if not force and db.exec(select(User)).first() is not None:
        return False
    today = today or date.today()
    end_of_next_year = date(today.year + 1, 12, 31)

    martin = Family(
        name="Martin",
        address_line="12 rue des Lilas",
        postcode="00100",
        city="Démonstration",
        phone_home="01 23 45 67 89",
        qf=620,
        qf_valid_until=end_of_next_year,
        allowance_scheme="CAF",
        allowance_number="1234567",
        payer_position=1,
    )
    martin.guardians = [
        Guardian(position=1, title="Mme", first_name="Claire", last_name="Martin", relationship="Mère",
                 phone_mobile="06 12 34 56 78", email="parent@demo.test", employer="Hôpital de Démonstration"),
        Guardian(position=2, title="M.", first_name="Julien", last_name="Martin", relationship="Père",
                 phone_mobile="06 98 76 54 32", email="parent2@demo.test"),
    ]
    benali = Family(
        name="Benali",
        address_line="3 allée des Tilleuls",
        address_extra="Bâtiment B, appartement 12",
        postcode="00100",
        city="Démonstration",
        payer_position=1,
    )
    benali.guardians = [
        Guardian(position=1, title="Mme", first_name="Samira", last_name="Benali", relationship="Mère",
                 phone_mobile="07 11 22 33 44", email="famille2@demo.test"),
    ]
    db.add(martin)
    db.add(benali)
    db.flush()

    db.add_all([
        Child(family_id=martin.id, first_name="Léa", last_name="Martin", birth_date=_years_ago(today, 8, 40),
              sex="F", school="École Jules-Ferry", school_class="CE2", allergies="Arachide",
              has_pai=True, pai_details="Trousse d'urgence dans le sac (stylo d'adrénaline).",
              doctor_name="Dr Bernard", doctor_phone="01 98 76 54 32",
              pickup_persons="Monique Martin, grand-mère, 06 55 44 33 22", image_rights=True),
        Child(family_id=martin.id, first_name="Hugo", last_name="Martin", birth_date=_years_ago(today, 5, 100),
              sex="M", school="École maternelle Les Petits Pas", school_class="GS",
              doctor_name="Dr Bernard", doctor_phone="01 98 76 54 32", image_rights=True),
        Child(family_id=benali.id, first_name="Yanis", last_name="Benali", birth_date=_years_ago(today, 7, 200),
              sex="M", school="École Jules-Ferry", school_class="CE1", image_rights=False),
    ])

    def account(email, role, first, last, family=None):
        return User(email=email, password_hash=hasher.hash(DEMO_ACCOUNTS[email]), role=role,
                    first_name=first, last_name=last, family_id=family.id if family else None)

    claire = account("parent@demo.test", "parent", "Claire", "Martin", martin)
    samira = account("famille2@demo.test", "parent", "Samira", "Benali", benali)
    db.add_all([
        claire,
        account("parent2@demo.test", "parent", "Julien", "Martin", martin),
        samira,
        account("agent@demo.test", "agent", "Sophie", "Leroy"),
    ])
    db.commit()

    # Something for the agent to validate on the first visit: a new phone number for the Benali family.
    db.refresh(benali)
    after = family_service.family_snapshot(benali)
    after["family"]["phone_home"] = "01 44 55 66 77"
    family_service.request_family_change(db, samira, benali, after)
    return True
