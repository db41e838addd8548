"""The demo town, relative to today so that it never goes stale (`flask seed-demo`)."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

from argon2 import PasswordHasher
from sqlmodel import Session, select

from db import writing_session
from models import (
    Booking,
    Child,
    ChildHousehold,
    ClosedDay,
    DaySlot,
    DocumentType,
    Draft,
    Enrollment,
    Establishment,
    Family,
    Guardian,
    Invoice,
    Period,
    PeriodUnit,
    Price,
    QfBracket,
    RequiredDocument,
    Reservation,
    ReservationLine,
    Unit,
    UnitExclusion,
    User,
    utcnow,
)
from services import billing, periods, planning
from services import family as family_service
from services.calendar import paris_today
from services.formatting import PARIS

# Logins shown in the README; a town's real data never uses the .test domain.
DEMO_ACCOUNTS = {
    "parent@demo.test": "parent-demo-ribambelle",
    "parent2@demo.test": "parent2-demo-ribambelle",
    "famille2@demo.test": "famille2-demo-ribambelle",
    "famille3@demo.test": "famille3-demo-ribambelle",
    "agent@demo.test": "agent-demo-ribambelle",
    "admin@demo.test": "admin-demo-ribambelle",
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
    today = today or paris_today(utcnow())
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
    # Yanis lives between two homes (garde alternée): his father's household books and pays its own days.
    father = Family(name="Benali (foyer du père)", address_line="27 avenue de la Gare", postcode="00100",
                    city="Démonstration", qf=950, qf_valid_until=end_of_next_year, allowance_scheme="CAF",
                    allowance_number="7654321", payer_position=1)
    father.guardians = [
        Guardian(position=1, title="M.", first_name="Karim", last_name="Benali", relationship="Père",
                 phone_mobile="06 21 43 65 87", email="famille3@demo.test"),
    ]
    db.add(martin)
    db.add(benali)
    db.add(father)
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
        account("famille3@demo.test", "parent", "Karim", "Benali", father),
        account("agent@demo.test", "agent", "Sophie", "Leroy"),
        account("admin@demo.test", "admin", "Marc", "Dubois"),
    ])
    db.flush()
    yanis = db.exec(select(Child).where(Child.family_id == benali.id)).one()
    db.add(ChildHousehold(child_id=yanis.id, family_id=father.id,
                          pickup_persons="Nadia Benali, tante, 06 31 42 53 64"))
    db.commit()

    # Something for the agent to validate on the first visit: a new phone number for the Benali family.
    db.refresh(benali)
    after = family_service.family_snapshot(benali)
    after["family"]["phone_home"] = "01 44 55 66 77"
    family_service.request_family_change(db, samira, benali, after)

    _seed_planning(db, today, claire, [c for c in db.exec(select(Child)).all()])
    return True


def _next_weekday(day: date, at_least: int) -> date:
    """The first Monday-Friday at least ``at_least`` days after ``day``."""
    d = day + timedelta(days=at_least)
    while d.weekday() > 4 or planning.holiday_name(d):
        d += timedelta(days=1)
    return d


def _seed_planning(db: Session, today: date, parent: User, children: list[Child]) -> None:
    """Two establishments with periods around today, so every cell state shows on the planning."""
    now = utcnow()
    if today != now.astimezone(PARIS).date():  # a demo for another day (tests): ten o'clock that day
        now = datetime.combine(today, time(10, 0), tzinfo=PARIS)
    lutins = Establishment(name="Accueil de loisirs Les Lutins", kind="loisirs",
                           address="5 chemin des Écoliers, 00100 Démonstration", phone="01 23 00 00 01",
                           email="lutins@demo.test", enrolment_open=True, enrolment_cap=40)
    ferry = Establishment(name="Périscolaire école Jules-Ferry", kind="periscolaire",
                          address="2 rue de l'École, 00100 Démonstration", phone="01 23 00 00 02")
    db.add_all([lutins, ferry])
    db.flush()
    # The papers the demo town asks for: each one warns, none blocks (the demo's bookings go through).
    vaccines = DocumentType(name="Carnet de vaccination", per_child=True, validity="school_year")
    insurance = DocumentType(name="Attestation d'assurance", per_child=False, validity="calendar_year")
    db.add_all([vaccines, insurance])
    db.flush()
    db.add_all([RequiredDocument(establishment_id=lutins.id, document_type_id=vaccines.id),
                RequiredDocument(establishment_id=lutins.id, document_type_id=insurance.id),
                RequiredDocument(establishment_id=ferry.id, document_type_id=insurance.id)])
    matinee = Unit(establishment_id=lutins.id, code="matinee", label="Matinée", position=1, capacity=4,
                   starts_at=time(8, 30), ends_at=time(12, 0))
    repas = Unit(establishment_id=lutins.id, code="repas", label="Repas", position=2, capacity=4,
                 starts_at=time(12, 0), ends_at=time(13, 30))
    apres_midi = Unit(establishment_id=lutins.id, code="apres-midi", label="Après-midi", short_label="A.-midi", position=3, capacity=4,
                      starts_at=time(13, 30), ends_at=time(17, 30))
    journee = Unit(establishment_id=lutins.id, code="journee", label="Journée", position=4, capacity=3,
                   starts_at=time(8, 30), ends_at=time(17, 30))
    matin = Unit(establishment_id=ferry.id, code="accueil-matin", label="Accueil du matin", short_label="Matin", position=1, capacity=20,
                 starts_at=time(7, 30), ends_at=time(8, 20))
    cantine = Unit(establishment_id=ferry.id, code="repas", label="Repas", position=2, capacity=30,
                   starts_at=time(11, 45), ends_at=time(13, 20))
    soir = Unit(establishment_id=ferry.id, code="accueil-soir", label="Accueil du soir", short_label="Soir", position=3, capacity=20,
                starts_at=time(16, 30), ends_at=time(18, 30))
    db.add_all([matinee, repas, apres_midi, journee, matin, cantine, soir])
    db.flush()
    db.add_all([UnitExclusion(unit_id=journee.id, excluded_unit_id=matinee.id),
                UnitExclusion(unit_id=journee.id, excluded_unit_id=apres_midi.id)])

    start, end = today - timedelta(days=7), today + timedelta(days=55)
    holidays_period = Period(
        establishment_id=lutins.id, name=f"Accueil de loisirs du {start:%d/%m} au {end:%d/%m/%Y}",
        start_date=start, end_date=end, booking_opens_at=now - timedelta(days=30),
        booking_closes_at=now + timedelta(days=50), auto_accept_days=8, min_days=2,
        cancel_auto_days=8, cancel_min_days=2,
    )
    term_start, term_end = today - timedelta(days=65), today + timedelta(days=90)
    term = Period(
        establishment_id=ferry.id, name=f"Périscolaire du {term_start:%d/%m/%Y} au {term_end:%d/%m/%Y}",
        start_date=term_start, end_date=term_end, booking_opens_at=now - timedelta(days=60),
        booking_closes_at=now + timedelta(days=85), auto_accept_days=8, min_days=2,
        cancel_auto_days=8, cancel_min_days=2,
    )
    db.add_all([holidays_period, term])
    db.flush()
    periods.close_holidays(db, holidays_period)
    periods.close_holidays(db, term)
    for unit in (matinee, repas, apres_midi, journee):
        db.add(PeriodUnit(period_id=holidays_period.id, unit_id=unit.id, weekdays="01234"))
    for unit in (matin, cantine, soir):
        db.add(PeriodUnit(period_id=term.id, unit_id=unit.id, weekdays="0134"))  # no school on Wednesday
    # The town's prices, per quotient-familial bracket (0-450, 451-800, 801-1200, above), in cents.
    brackets = [(0, 450), (451, 800), (801, 1200), (1201, None)]
    grid = [(matinee, [350, 450, 550, 650]), (repas, [290, 350, 410, 470]), (apres_midi, [350, 450, 550, 650]),
            (journee, [800, 1000, 1200, 1400]), (matin, [100, 130, 160, 190]), (cantine, [250, 320, 390, 460]),
            (soir, [150, 190, 230, 270])]
    db.add_all([QfBracket(qf_min=low, qf_max=high) for low, high in brackets])
    for unit, amounts in grid:
        for (low, high), cents in zip(brackets, amounts):
            db.add(Price(unit_id=unit.id, qf_min=low, qf_max=high, amount_cents=cents))
    holidays_period.surcharge_percent = term.surcharge_percent = 20
    # Distinct weekdays for the demo's states: two accepted days, two full days, a closed day.
    accepted_1 = _next_weekday(today, 10)
    accepted_2 = _next_weekday(accepted_1, 1)
    full_1 = _next_weekday(accepted_2, 2)
    full_2 = _next_weekday(full_1, 3)
    db.add(ClosedDay(period_id=holidays_period.id, day=_next_weekday(full_2, 2), reason="Journée pédagogique : structure fermée"))
    # Two days already full, taken by families outside the demo.
    for day in (full_1, full_2):
        db.add(DaySlot(unit_id=journee.id, day=day, taken=journee.capacity))
    by_name = {c.first_name: c for c in children}
    for name in ("Léa", "Hugo", "Yanis"):
        db.add(Enrollment(child_id=by_name[name].id, establishment_id=lutins.id))
    for name in ("Léa", "Yanis"):
        db.add(Enrollment(child_id=by_name[name].id, establishment_id=ferry.id))
    db.commit()

    # A reservation of Léa made through the planning: two days accepted, one request for an agent,
    # and a full day on the waiting list.
    lea = by_name["Léa"]
    for day in (accepted_1, accepted_2, _next_weekday(today, 3)):
        planning.toggle(db, lea, holidays_period, matinee.id, day, now)
    planning.toggle(db, lea, holidays_period, journee.id, full_2, now)
    draft = db.exec(select(Draft).where(Draft.child_id == lea.id)).one()
    with writing_session(db.get_bind()) as wdb:
        planning.confirm(wdb, parent.id, wdb.get(Child, lea.id), wdb.get(Period, holidays_period.id), draft.revision, now)
    _seed_last_month(db, today, now, parent, lea, term, [cantine, soir])


def _seed_last_month(db: Session, today: date, now: datetime, parent: User, lea: Child, term: Period,
                     units: list[Unit]) -> None:
    """Léa's périscolaire last month, billed, and partly paid by cheque at the counter."""
    db.commit()  # a fresh transaction: the confirmation above wrote through another connection
    last_month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    days = [d for d in (last_month + timedelta(days=i) for i in range(31))
            if d.month == last_month.month and d.weekday() in (0, 1, 3) and not planning.holiday_name(d)][:6]
    reservation = Reservation(number=planning.next_number(db, last_month.year), family_id=lea.family_id,
                              child_id=lea.id, period_id=term.id, kind="booking", status="accepted",
                              confirm_key=f"demo-history-{lea.id}", created_by_id=parent.id,
                              created_at=now - timedelta(days=40))
    db.add(reservation)
    db.flush()
    for day in days:
        for unit in units:
            line = ReservationLine(reservation_id=reservation.id, unit_id=unit.id, day=day, action="book",
                                   outcome="accepted", state="accepted")
            db.add(line)
            db.flush()
            db.add(Booking(child_id=lea.id, unit_id=unit.id, day=day, status="accepted", line_id=line.id,
                           family_id=lea.family_id))
    db.commit()
    billing.run(db.get_bind(), last_month, today, mail=False)
    invoice = db.exec(select(Invoice).where(Invoice.family_id == lea.family_id)).one()
    agent = db.exec(select(User).where(User.role == "agent")).one()
    billing.record_counter_payment(db, agent.id, invoice, 1000, "cheque", "Chèque n° 0001234")
