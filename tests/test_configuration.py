"""The town's configuration without HTTP (services.configuration): units with their exclusions and
prices, the QF brackets; each change journaled with its values before and after, on both backends."""
from datetime import date, datetime, time, timezone

import pytest
from sqlmodel import select

from models import (
    AuditEntry,
    Booking,
    Child,
    ClosedDay,
    Enrollment,
    Establishment,
    Guardian,
    OutboxMail,
    Period,
    PeriodUnit,
    Price,
    QfBracket,
    Unit,
    UnitExclusion,
    User,
)
from services import configuration, periods
from services import family as family_service


@pytest.fixture
def town(db):
    """A fresh establishment with two units, and the admin who configures it."""
    admin = db.exec(select(User).where(User.role == "admin")).first()
    est = Establishment(name="Accueil de loisirs Les Écureuils", kind="loisirs")
    db.add(est)
    db.flush()
    morning = Unit(establishment_id=est.id, code="matin", label="Matin", position=1, capacity=12)
    day = Unit(establishment_id=est.id, code="journee", label="Journée", position=2, capacity=12)
    db.add_all([morning, day])
    db.commit()
    return admin, est, morning, day


FIELDS = {"label": "Après-midi", "short_label": "A.-midi", "position": 3, "capacity": 20}


def test_a_new_unit_gets_its_code_exclusions_both_ways_and_a_price_per_bracket(db, town):
    admin, est, morning, day = town
    brackets = configuration.save_brackets(db, admin.id, ["450", "800"])
    assert [(b.qf_min, b.qf_max) for b in brackets] == [(0, 450), (451, 800), (801, None)]
    unit = configuration.save_unit(db, admin.id, est, None, FIELDS, {day.id}, {brackets[0].id: 350, brackets[2].id: 725})
    assert unit.code == "apres-midi" and unit.short_label == "A.-midi"
    assert configuration.unit_exclusions(db, [unit.id, day.id]) == {unit.id: {day.id}, day.id: {unit.id}}
    prices = {(p.qf_min, p.qf_max): p.amount_cents for p in db.exec(select(Price).where(Price.unit_id == unit.id))}
    assert prices == {(0, 450): 350, (801, None): 725}  # the middle bracket left empty: no price
    entry = db.exec(select(AuditEntry).where(AuditEntry.target == "unit", AuditEntry.target_id == unit.id)).one()
    assert entry.action == "create" and entry.after["tarifs"] == {"QF de 0 à 450 €": 350, "QF à partir de 801 €": 725}


def test_changing_a_unit_replaces_its_prices_and_exclusions_and_journals_both_sides(db, town):
    admin, est, morning, day = town
    brackets = configuration.save_brackets(db, admin.id, ["600"])
    configuration.save_unit(db, admin.id, est, morning, {**FIELDS, "label": "Matin"}, {day.id}, {brackets[0].id: 300})
    configuration.save_unit(db, admin.id, est, morning, {**FIELDS, "label": "Matinée", "capacity": 15}, set(),
                            {brackets[1].id: 500})
    db.expire_all()
    assert db.get(Unit, morning.id).label == "Matinée" and db.get(Unit, morning.id).capacity == 15
    assert db.exec(select(UnitExclusion).where(UnitExclusion.unit_id.in_([morning.id, day.id]))).all() == []
    assert [(p.qf_min, p.amount_cents) for p in db.exec(select(Price).where(Price.unit_id == morning.id))] == [(601, 500)]
    last = db.exec(select(AuditEntry).where(AuditEntry.target == "unit").order_by(AuditEntry.id.desc())).first()
    assert last.action == "update" and last.before["label"] == "Matin" and last.after["label"] == "Matinée"
    assert last.before["exclut"] == [day.id] and last.after["exclut"] == []
    assert last.before["tarifs"] == {"QF de 0 à 600 €": 300} and last.after["tarifs"] == {"QF à partir de 601 €": 500}


def test_a_unit_of_another_establishment_cannot_be_excluded(db, town):
    admin, est, morning, _ = town
    other = db.exec(select(Unit).where(Unit.establishment_id != est.id)).first()
    before = db.exec(select(UnitExclusion)).all()
    with pytest.raises(configuration.ConfigurationError, match="pas de cet établissement"):
        configuration.save_unit(db, admin.id, est, morning, FIELDS, {other.id}, {})
    db.rollback()
    assert db.exec(select(UnitExclusion)).all() == before and db.get(Unit, morning.id).label == "Matin"


@pytest.mark.parametrize("ceilings, words", [(["450", "abc"], "nombre entier"), (["800", "450"], "en croissant"),
                                             (["450", "450"], "sans doublon"), (["100000"], "entre 1 et 99 999")])
def test_brackets_refused_change_nothing(db, town, ceilings, words):
    admin = town[0]
    before = [(b.qf_min, b.qf_max) for b in db.exec(select(QfBracket).order_by(QfBracket.qf_min))]
    with pytest.raises(configuration.ConfigurationError, match=words):
        configuration.save_brackets(db, admin.id, ceilings)
    db.rollback()
    assert [(b.qf_min, b.qf_max) for b in db.exec(select(QfBracket).order_by(QfBracket.qf_min))] == before


def test_a_period_is_saved_with_its_units_weekdays_and_holidays_and_journaled(db, town):
    admin, est, morning, day = town
    now = datetime(2027, 3, 1, 9, tzinfo=timezone.utc)
    values = {"name": "Vacances de printemps 2027", "start_date": date(2027, 4, 26), "end_date": date(2027, 5, 7),
              "booking_opens_at": now, "booking_closes_at": datetime(2027, 4, 20, 16, tzinfo=timezone.utc),
              "auto_accept_days": 8, "min_days": 2, "cancel_auto_days": 8, "cancel_min_days": 2, "cutoff_time": time(18, 0),
              "working_days": False, "waitlist_auto": True, "surcharge_percent": 0}
    saved = periods.save_period(db, admin.id, est, None, values, {morning.id: "01234", day.id: "0134"}, [], now)
    period = db.get(Period, saved.period.id)
    assert {(pu.unit_id, pu.weekdays) for pu in db.exec(select(PeriodUnit).where(PeriodUnit.period_id == period.id))} \
        == {(morning.id, "01234"), (day.id, "0134")}
    assert saved.holidays_closed == 2  # 1 May and Ascension (6 May 2027) fall in it
    closed = db.exec(select(ClosedDay).where(ClosedDay.period_id == period.id).order_by(ClosedDay.day)).all()
    assert [(c.day, c.reason) for c in closed] == [(date(2027, 5, 1), "Jour férié : Fête du Travail"),
                                                   (date(2027, 5, 6), "Jour férié : Ascension")]
    periods.save_period(db, admin.id, est, period, {**values, "name": "Printemps 2027"}, {morning.id: "01234"}, [], now)
    assert [pu.unit_id for pu in db.exec(select(PeriodUnit).where(PeriodUnit.period_id == period.id))] == [morning.id]
    entry = db.exec(select(AuditEntry).where(AuditEntry.target == "period").order_by(AuditEntry.id.desc())).first()
    assert entry.before["name"] == "Vacances de printemps 2027" and entry.after["name"] == "Printemps 2027"
    assert entry.before["unites"] == {str(morning.id): "01234", str(day.id): "0134"}
    assert entry.after["unites"] == {str(morning.id): "01234"}


def test_enrolling_a_class_enrols_each_child_once_and_withdrawing_keeps_the_bookings(db, town):
    admin, est, _, _ = town
    pupil = db.exec(select(Child).where(Child.school != "", Child.school_class != "")).first()
    classmates = configuration.school_class(db, pupil.school, pupil.school_class)
    assert pupil in classmates and configuration.school_class(db, pupil.school, "") == []
    assert configuration.enrol(db, admin.id, est, classmates) == classmates
    assert configuration.enrol(db, admin.id, est, classmates) == []  # already enrolled: nothing twice
    enrolled = db.exec(select(Enrollment).where(Enrollment.establishment_id == est.id)).all()
    assert sorted(e.child_id for e in enrolled) == sorted(c.id for c in classmates)
    bookings = len(db.exec(select(Booking).where(Booking.child_id == pupil.id)).all())
    assert configuration.withdraw(db, admin.id, est, pupil) is True
    assert configuration.withdraw(db, admin.id, est, pupil) is False
    assert len(db.exec(select(Booking).where(Booking.child_id == pupil.id)).all()) == bookings
    journal = db.exec(select(AuditEntry).where(AuditEntry.target == "enrollment")).all()
    assert [e.action for e in journal].count("create") == len(classmates) and [e.action for e in journal].count("delete") == 1


def test_opening_a_family_makes_its_guardian_its_login_and_the_invitation(app, db, town):
    admin = town[0]
    guardian = {"title": "Mme", "first_name": "Inès", "last_name": "Bernard", "phone_mobile": "06 11 22 33 44"}
    with app.app_context():  # the invitation's link is made from BASE_URL
        family, user = family_service.open_family(db, app.extensions["ribambelle.hasher"], admin.id, "Bernard",
                                                  guardian, " Ines.Bernard@Exemple.FR ", "Ville de Démonstration")
    db.expire_all()
    assert db.get(User, user.id).email == "ines.bernard@exemple.fr" and db.get(User, user.id).family_id == family.id
    kept = db.exec(select(Guardian).where(Guardian.family_id == family.id)).one()
    assert (kept.first_name, kept.email, kept.position) == ("Inès", "ines.bernard@exemple.fr", 1)
    mail = db.exec(select(OutboxMail).where(OutboxMail.recipient == "ines.bernard@exemple.fr")).one()
    assert mail.subject == "Votre compte sur le portail famille de Ville de Démonstration" and mail.token_hash
    entry = db.exec(select(AuditEntry).where(AuditEntry.target == "family", AuditEntry.target_id == family.id)).one()
    assert entry.after == {"famille": "Bernard", "email": "ines.bernard@exemple.fr"}
