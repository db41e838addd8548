"""The demo town: the README's logins work, and loading twice loads nothing twice."""
from datetime import date, timedelta

import pytest
from sqlmodel import Session, func, select

from models import Booking, Child, ClosedDay, DaySlot, Family, Reservation, Unit, User
from services import demo_data, migrations

pytestmark = pytest.mark.demo  # walks the demo town as a visitor of `make run` would


def test_every_readme_login_works(client, auth):
    for email in demo_data.DEMO_ACCOUNTS:
        assert auth.login(email).status_code == 302, email
        auth.logout()


def test_demo_families_and_children(db):
    martin = db.exec(select(Family).where(Family.name == "Martin")).one()
    assert [c.first_name for c in martin.children] == ["Léa", "Hugo"]
    assert {u.email for u in martin.users} == {"parent@demo.test", "parent2@demo.test"}
    benali = db.exec(select(Family).where(Family.name == "Benali")).one()
    assert [c.first_name for c in benali.children] == ["Yanis"]
    father = db.exec(select(Family).where(Family.name == "Benali (foyer du père)")).one()
    assert [c.first_name for c in father.children] == ["Yanis"] and father.own_children == []  # shared custody
    assert db.exec(select(User).where(User.email == "agent@demo.test")).one().role == "agent"


def test_seeding_again_loads_nothing(app, db):
    assert demo_data.seed(db, app.extensions["ribambelle.hasher"]) is False
    assert db.exec(select(func.count()).select_from(User)).one() == 6


def test_demo_is_relative_to_today(app, make_app, db):
    # ages and validity dates move with the day the demo is loaded
    lea = db.exec(select(Child).where(Child.first_name == "Léa")).one()
    assert 8 <= (date.today() - lea.birth_date).days // 365 <= 9
    martin = db.exec(select(Family).where(Family.name == "Martin")).one()
    assert martin.qf_valid_until > date.today()


def test_demo_planning_shows_every_state_a_seed_can_make(db):
    """Whatever the weekday the demo is loaded on: accepted, request, waiting list, full, closed, locked."""
    statuses = sorted(b.status for b in db.exec(select(Booking).where(Booking.day >= date.today())))
    assert statuses == ["accepted", "accepted", "request", "waitlist"]
    assert len(db.exec(select(Reservation).where(Reservation.status == "pending")).all()) == 1
    full = [s for s in db.exec(select(DaySlot)) if s.taken >= db.get(Unit, s.unit_id).capacity]
    assert len(full) == 2
    own = db.exec(select(ClosedDay).where(ClosedDay.reason.not_like("Jour férié%"))).one()
    assert own.day > date.today() + timedelta(days=10)


def test_demo_loads_the_same_states_on_any_weekday(app, make_app, tmp_path):
    for offset in range(7):
        url = f"sqlite:///{tmp_path / f'day{offset}.sqlite'}"
        migrations.upgrade(url)
        other = make_app(DATABASE_URL=url)
        with Session(other.extensions["ribambelle.engine"]) as s:
            demo_data.seed(s, other.extensions["ribambelle.hasher"], today=date.today() + timedelta(days=offset))
        with Session(other.extensions["ribambelle.engine"]) as s:
            upcoming = s.exec(select(Booking).where(Booking.day >= date.today() + timedelta(days=offset)))
            assert sorted(b.status for b in upcoming) == ["accepted", "accepted", "request", "waitlist"], offset
