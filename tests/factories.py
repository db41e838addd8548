"""What the tests share: the demo town's people and places looked up by name, a few clock values,
and the steps of a journey (log in, open the planning, book, cancel). Not a test module: test modules
import from here (and from conftest.py), never from each other."""
from datetime import datetime

from playwright.sync_api import expect
from sqlmodel import Session, select

from db import writing_session
from models import Child, Enrollment, Establishment, Period, ReservationLine, Unit, User, utcnow
from services import planning
from services.formatting import PARIS
from tests.conftest import AXE, csrf_from


def paris(y, m, d, hh=10, mm=0):
    return datetime(y, m, d, hh, mm, tzinfo=PARIS)


NOW = paris(2027, 6, 28)  # a Monday, ten o'clock


def lutins_units(db):
    return db.exec(select(Unit).join(Establishment).where(Establishment.name == "Accueil de loisirs Les Lutins")).all()


def units(db):
    return {u.code: u for u in lutins_units(db)}


def child(db, name="Léa"):
    return db.exec(select(Child).where(Child.first_name == name)).one()

# --- confirmation --------------------------------------------------------------------------------------


def confirm(app, name, period, now=NOW, revision=None):
    with Session(app.extensions["ribambelle.engine"]) as s:
        c = s.exec(select(Child).where(Child.first_name == name)).one()
        draft_rev = revision
        if draft_rev is None:
            draft, _ = planning.recap(s, c, s.get(Period, period.id), now)
            draft_rev = draft.revision
        parent = s.exec(select(User).where(User.family_id == c.family_id)).first()
    with writing_session(app.extensions["ribambelle.engine"]) as w:
        return planning.confirm(w, parent.id, w.get(Child, c.id), w.get(Period, period.id), draft_rev, now)


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
        c = s.exec(select(Child).where(Child.first_name == name)).one()
        draft, _ = planning.recap(s, c, s.get(Period, period.id), now, mode="cancel")
    with writing_session(app.extensions["ribambelle.engine"]) as w:
        return planning.confirm_cancellation(w, 1, w.get(Child, c.id), w.get(Period, period.id),
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


def kid(db, name):
    return db.exec(select(Child).where(Child.first_name == name)).one()


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
