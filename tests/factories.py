"""What the tests share. Not a test module: test modules import from here (and from conftest.py),
never from each other.

- The fixture town of the rules tests (``make_town``): the Centre de loisirs Les Tilleuls, its four
  units, and two families (Durand: Zoé and Noé; Haddad: Rayan), built here, not read from the demo, so
  that changing the demo never changes what those tests check.
- The journeys' helpers, which walk the demo town as a visitor would (log in, open the planning…).
- A few clock values."""
from datetime import date, datetime

from playwright.sync_api import expect
from sqlmodel import Session, select

from db import writing_session
from models import Child, Enrollment, Establishment, Family, Period, ReservationLine, Unit, UnitExclusion, User, utcnow
from services import planning
from services.formatting import PARIS
from tests.conftest import AXE, csrf_from


def paris(y, m, d, hh=10, mm=0):
    return datetime(y, m, d, hh, mm, tzinfo=PARIS)


NOW = paris(2027, 6, 28)  # a Monday, ten o'clock


TOWN = "Centre de loisirs Les Tilleuls"
# code -> (label, capacity); a whole day cannot be booked with its morning or its afternoon.
TOWN_UNITS = {"matinee": ("Matinée", 4), "repas": ("Repas", 4), "apres-midi": ("Après-midi", 4), "journee": ("Journée", 3)}
TOWN_FAMILIES = [  # (family, QF, logins, children)
    ("Durand", 620, ["zoe.parent@tilleuls.test", "zoe.parent2@tilleuls.test"], [("Zoé", date(2018, 10, 23)),
                                                                                   ("Noé", date(2021, 8, 24))]),
    ("Haddad", 380, ["rayan.parent@tilleuls.test"], [("Rayan", date(2019, 5, 2))]),
]


def make_town(db) -> Establishment:
    """The fixture town of the rules tests: its establishment, units, families, logins and children,
    every child enrolled. Periods are the tests' own (the ``summer`` fixture)."""
    est = Establishment(name=TOWN, kind="loisirs")
    db.add(est)
    db.flush()
    made = {code: Unit(establishment_id=est.id, code=code, label=label, position=i, capacity=capacity)
            for i, (code, (label, capacity)) in enumerate(TOWN_UNITS.items(), start=1)}
    db.add_all(made.values())
    db.flush()
    db.add_all([UnitExclusion(unit_id=made["journee"].id, excluded_unit_id=made[code].id)
                for code in ("matinee", "apres-midi")])
    for name, qf, logins, kids in TOWN_FAMILIES:
        family = Family(name=name, qf=qf, qf_valid_until=date(2027, 12, 31))
        db.add(family)
        db.flush()
        for email in logins:
            db.add(User(email=email, password_hash="unusable", role="parent", first_name=email.split(".")[0].title(),
                        last_name=name, family_id=family.id))
        for first_name, birth_date in kids:
            kid_ = Child(family_id=family.id, first_name=first_name, last_name=name, birth_date=birth_date)
            db.add(kid_)
            db.flush()
            db.add(Enrollment(child_id=kid_.id, establishment_id=est.id))
    db.commit()
    return est


def town_units(db):
    return db.exec(select(Unit).join(Establishment).where(Establishment.name == TOWN).order_by(Unit.position)).all()


def units(db):
    return {u.code: u for u in town_units(db)}


def child(db, name="Zoé"):
    return db.exec(select(Child).where(Child.first_name == name)).one()


def parent_id(db, name="Zoé") -> int:
    """The first login of the child's family: who confirms in the rules tests."""
    return db.exec(select(User.id).where(User.family_id == child(db, name).family_id).order_by(User.id)).first()


# --- confirmation --------------------------------------------------------------------------------------


def confirm(app, name, period, now=NOW, revision=None):
    with Session(app.extensions["ribambelle.engine"]) as s:
        c, parent = child(s, name), parent_id(s, name)
        draft_rev = revision
        if draft_rev is None:
            draft, _ = planning.recap(s, c, s.get(Period, period.id), now)
            draft_rev = draft.revision
    with writing_session(app.extensions["ribambelle.engine"]) as w:
        return planning.confirm(w, parent, w.get(Child, c.id), w.get(Period, period.id), draft_rev, now)


def enroll_everyone(db, period):
    for c in db.exec(select(Child)).all():
        if not db.exec(select(Enrollment).where(Enrollment.child_id == c.id, Enrollment.establishment_id == period.establishment_id)).first():
            db.add(Enrollment(child_id=c.id, establishment_id=period.establishment_id))
    db.commit()


def book(app, db, period, name, code, day, now=NOW):
    planning.toggle(db, child(db, name), period, units(db)[code].id, day, now)
    return confirm(app, name, period, now=now)


def cancel(app, db, period, name, code, day, now=NOW):
    planning.toggle(db, child(db, name), period, units(db)[code].id, day, now, mode="cancel")
    with Session(app.extensions["ribambelle.engine"]) as s:
        c, parent = child(s, name), parent_id(s, name)
        draft, _ = planning.recap(s, c, s.get(Period, period.id), now, mode="cancel")
    with writing_session(app.extensions["ribambelle.engine"]) as w:
        return planning.confirm_cancellation(w, parent, w.get(Child, c.id), w.get(Period, period.id),
                                             draft.revision, now)


def lines_of(db, reservation):
    db.expire_all()
    return db.exec(select(ReservationLine).where(ReservationLine.reservation_id == reservation.id)).all()


def login(page, email="parent@demo.test", password="parent-demo-ribambelle"):
    page.goto("/")
    page.get_by_label("Identifiant (adresse mail)").fill(email)
    page.get_by_label("Mot de passe").fill(password)
    page.get_by_role("button", name="Connexion").click()


def open_planning_from_the_window(page, button="Nouvelle réservation", heading="Planning de Léa Martin"):
    """The window of the guide: child, establishment, period, "Continuer" (an htmx dialog)."""
    page.wait_for_load_state("load")  # a click before htmx has started opens the plain page instead
    page.get_by_role("link", name=button).click()
    dialog = page.get_by_role("dialog", name=button)
    expect(dialog).to_be_visible()
    dialog.get_by_label("Léa Martin").check()
    dialog.get_by_label("Accueil de loisirs Les Lutins").check()
    # the window grew with the next step below, the focus stayed on the choice (no jump, RGAA 7.4)
    expect(dialog.get_by_text("3. La période")).to_be_visible()
    expect(dialog.get_by_label("Accueil de loisirs Les Lutins")).to_be_focused()
    dialog.locator("input[name=periode]").first.check()
    dialog.get_by_role("button", name="Continuer").click()
    expect(page.get_by_role("heading", name=heading)).to_be_visible()


HX = {"HX-Request": "true"}


def lutins(db):
    est = db.exec(select(Establishment).where(Establishment.name == "Accueil de loisirs Les Lutins")).one()
    period = db.exec(select(Period).where(Period.establishment_id == est.id)).one()
    units = {u.code: u for u in db.exec(select(Unit).where(Unit.establishment_id == est.id))}
    return est, period, units


def ferry_period(db):
    est = db.exec(select(Establishment).where(Establishment.name == "Périscolaire école Jules-Ferry")).one()
    return db.exec(select(Period).where(Period.establishment_id == est.id)).one()


def bookable_day(db, period, unit, child, outcome="accepted"):
    """A day of the demo period where ``unit`` is available with that outcome today."""
    now = utcnow()
    days = planning.all_period_days(period)
    plan = planning.load_planning(db, child, period, days, now)
    for day in days:
        c = plan.cell(unit, day)
        if c.state == "available" and plan.outcome(unit, day) == outcome:
            return day
    raise AssertionError("no bookable day in the demo period")


def planning_url(child, period, month=None):
    url = f"/reservations/planning/{child.id}/{period.id}"
    return url + (f"?mois={month:%Y-%m}" if month else "")


def post_cell(client, child, period, unit, day, htmx=True):
    token = csrf_from(client.get(planning_url(child, period, day)).get_data(as_text=True))
    return client.post(
        f"/reservations/planning/{child.id}/{period.id}/cellule",
        data={"csrf_token": token, "cellule": f"{day.isoformat()}.{unit.id}", "mois": f"{day:%Y-%m}"},
        headers=HX if htmx else {},
    )


WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def violations(page) -> list[str]:
    """axe-core's WCAG 2.1 AA violations on the page as it is now, one line each."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    result = page.evaluate("async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}})).violations",
                           WCAG)
    return [f"{v['id']}: {v['help']} — {[n['target'] for n in v['nodes']][:3]}" for v in result]
