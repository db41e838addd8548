"""What the tests share. Not a test module: test modules import from here (and from conftest.py),
never from each other.

- The fixture town every test starts from (``make_town``, seeded by the ``app`` fixture): the Centre
  de loisirs Les Tilleuls and the Périscolaire école Prévert, two families (Durand: Zoé and Noé;
  Haddad: Rayan) with their logins, an agent and an admin. Built here, not read from the demo, so that
  changing the demo never changes what a test checks; each test makes the reservations, requests and
  invoices it needs.
- The journeys' helpers, which walk the demo town as a visitor would (log in, open the planning…):
  their tests are marked ``demo``.
- Forms (the CSRF token), axe-core and a few clock values."""
import re
import threading
from datetime import date, datetime, time, timedelta
from pathlib import Path

from playwright.sync_api import expect
from sqlmodel import Session, select

from db import writing_session
from models import (
    Booking,
    ChangeRequest,
    Child,
    DaySlot,
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
    Reservation,
    ReservationLine,
    Unit,
    UnitExclusion,
    User,
    utcnow,
)
from services import billing, demo_data, periods, planning
from services import family as family_service
from services.calendar import paris_today
from services.formatting import PARIS

AXE = Path(__file__).parent / "a11y" / "node_modules" / "axe-core" / "axe.min.js"

CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1) or match.group(2)


def paris(y, m, d, hh=10, mm=0):
    return datetime(y, m, d, hh, mm, tzinfo=PARIS)


NOW = paris(2027, 6, 28)  # a Monday, ten o'clock


TOWN = "Centre de loisirs Les Tilleuls"
SCHOOL = "Périscolaire école Prévert"
# code -> (label, capacity); a whole day cannot be booked with its morning or its afternoon.
TOWN_UNITS = {"matinee": ("Matinée", 4), "repas": ("Repas", 4), "apres-midi": ("Après-midi", 4), "journee": ("Journée", 3)}
SCHOOL_UNITS = {"accueil-matin": ("Accueil du matin", 20), "cantine": ("Cantine", 30), "accueil-soir": ("Accueil du soir", 20)}
# The town's logins and their passwords (hashed at the tests' argon2 cost).
PARENT, PARENT2, OTHER_PARENT = "zoe.parent@tilleuls.test", "zoe.parent2@tilleuls.test", "rayan.parent@tilleuls.test"
AGENT, ADMIN = "agent@tilleuls.test", "admin@tilleuls.test"
PASSWORDS = {PARENT: "zoe-parent-tilleuls", PARENT2: "zoe-parent2-tilleuls", OTHER_PARENT: "rayan-parent-tilleuls",
             AGENT: "agent-tilleuls-mairie", ADMIN: "admin-tilleuls-mairie"}
PREVERT, MATERNELLE = "École Prévert", "École maternelle Prévert"
TOWN_FAMILIES = [  # (family, QF, logins with their guardian's first name, children: name, birth, school, class)
    ("Durand", 620, [(PARENT, "Anne"), (PARENT2, "Paul")], [("Zoé", date(2018, 10, 23), PREVERT, "CE2"),
                                                             ("Noé", date(2021, 8, 24), MATERNELLE, "GS")]),
    ("Haddad", 380, [(OTHER_PARENT, "Nadia")], [("Rayan", date(2019, 5, 2), PREVERT, "CE2")]),
]
ZOE_FILE = dict(sex="F", allergies="Arachide", has_pai=True, pai_details="Trousse d'urgence dans le sac.", doctor_name="Dr Roux",
                doctor_phone="01 40 00 00 20", pickup_persons="Marie Durand, grand-mère, 06 00 00 00 09", image_rights=True)
ADDRESSES = {"Durand": "4 rue du Parc", "Haddad": "9 allée des Cerisiers"}
BRACKETS = [(0, 450), (451, 800), (801, None)]
PRICES = {"matinee": [400, 500, 600], "repas": [300, 360, 420], "apres-midi": [400, 500, 600], "journee": [900, 1100, 1300],
          "accueil-matin": [120, 150, 180], "cantine": [280, 340, 400], "accueil-soir": [160, 200, 240]}


def make_town(db, hasher=None, today: date | None = None) -> Establishment:
    """The fixture town every test but the demo's own starts from: the Centre de loisirs Les Tilleuls
    (four units) and the Périscolaire école Prévert (three, no Wednesday), each with a period around
    ``today`` open to booking; its prices per quotient-familial bracket; the Durand family (Zoé,
    Noé; two logins) and the Haddad family (Rayan; one login); an agent and an admin. Zoé and Rayan are
    enrolled in both establishments, Noé in the centre only. No reservation, request or invoice: the
    tests make theirs."""
    today = today or paris_today(utcnow())
    now = datetime.combine(today, time(10, 0), tzinfo=PARIS)

    def password(email):
        return hasher.hash(PASSWORDS[email]) if hasher else "unusable"

    est = Establishment(name=TOWN, kind="loisirs", address="8 rue des Tilleuls, 00200 Fixture", phone="01 40 00 00 01")
    school = Establishment(name=SCHOOL, kind="periscolaire", address="1 place Prévert, 00200 Fixture")
    db.add_all([est, school])
    db.flush()
    made = {code: Unit(establishment_id=est.id, code=code, label=label, position=i, capacity=capacity)
            for i, (code, (label, capacity)) in enumerate(TOWN_UNITS.items(), start=1)}
    made |= {code: Unit(establishment_id=school.id, code=code, label=label, position=i, capacity=capacity)
             for i, (code, (label, capacity)) in enumerate(SCHOOL_UNITS.items(), start=1)}
    db.add_all(made.values())
    db.flush()
    db.add_all([UnitExclusion(unit_id=made["journee"].id, excluded_unit_id=made[code].id)
                for code in ("matinee", "apres-midi")])
    db.add_all([QfBracket(qf_min=low, qf_max=high) for low, high in BRACKETS])
    db.add_all([Price(unit_id=made[code].id, qf_min=low, qf_max=high, amount_cents=cents)
                for code, amounts in PRICES.items() for (low, high), cents in zip(BRACKETS, amounts)])
    for name, qf, logins, kids in TOWN_FAMILIES:
        family = Family(name=name, qf=qf, qf_valid_until=date(today.year + 1, 12, 31), address_line=ADDRESSES[name],
                        postcode="00200", city="Fixture", phone_home="01 40 00 00 10", allowance_scheme="CAF",
                        allowance_number=f"{qf}0001", payer_position=1)
        family.guardians = [Guardian(position=i, title=title, first_name=first, last_name=name, relationship=relation,
                                     email=email, phone_mobile=f"06 00 00 00 0{i}")
                            for i, ((email, first), (title, relation)) in
                            enumerate(zip(logins, [("Mme", "Mère"), ("M.", "Père")]), start=1)]
        db.add(family)
        db.flush()
        for email, first in logins:
            db.add(User(email=email, password_hash=password(email), role="parent", first_name=first,
                        last_name=name, family_id=family.id))
        for first_name, birth_date, school_name, school_class in kids:
            kid_ = Child(family_id=family.id, first_name=first_name, last_name=name, birth_date=birth_date,
                         school=school_name, school_class=school_class, **(ZOE_FILE if first_name == "Zoé" else {"sex": "M"}))
            db.add(kid_)
            db.flush()
            db.add(Enrollment(child_id=kid_.id, establishment_id=est.id))
            if school_name == PREVERT:
                db.add(Enrollment(child_id=kid_.id, establishment_id=school.id))
    db.add_all([User(email=AGENT, password_hash=password(AGENT), role="agent", first_name="Inès", last_name="Morel"),
                User(email=ADMIN, password_hash=password(ADMIN), role="admin", first_name="Luc", last_name="Girard")])
    holidays = Period(establishment_id=est.id, name="Vacances aux Tilleuls", start_date=today - timedelta(days=7),
                      end_date=today + timedelta(days=55), booking_opens_at=now - timedelta(days=30),
                      booking_closes_at=now + timedelta(days=50), auto_accept_days=8, min_days=2,
                      cancel_auto_days=8, cancel_min_days=2)
    term = Period(establishment_id=school.id, name="Périscolaire de l'année", start_date=today - timedelta(days=65),
                  end_date=today + timedelta(days=90), booking_opens_at=now - timedelta(days=60),
                  booking_closes_at=now + timedelta(days=85), auto_accept_days=8, min_days=2,
                  cancel_auto_days=8, cancel_min_days=2)
    db.add_all([holidays, term])
    db.flush()
    for period, establishment, weekdays in ((holidays, est, "01234"), (term, school, "0134")):
        db.add_all([PeriodUnit(period_id=period.id, unit_id=u.id, weekdays=weekdays)
                    for u in made.values() if u.establishment_id == establishment.id])
        periods.close_holidays(db, period)
    db.commit()
    return est


def billed_month(db, name="Zoé", cheque_cents=1000, notice_days=None, mail=False, months_ago=1) -> Invoice:
    """The child's périscolaire last month (six days, lunch and evening), billed, and ``cheque_cents``
    of it paid by cheque at the counter: the family's invoice. ``notice_days``: direct debit offered
    (billing.run's), ``mail``: the invoice mails written, ``months_ago``: which month back is billed."""
    today = paris_today(utcnow())
    kid_, term = child(db, name), school_period(db)
    parent, agent = parent_id(db, name), db.exec(select(User).where(User.email == AGENT)).one()
    last_month = today.replace(day=1)
    for _ in range(months_ago):
        last_month = (last_month - timedelta(days=1)).replace(day=1)
    days = [d for d in (last_month + timedelta(days=i) for i in range(31))
            if d.month == last_month.month and d.weekday() in (0, 1, 3) and not planning.holiday_name(d)][:6]
    reservation = Reservation(number=planning.next_number(db, last_month.year), family_id=kid_.family_id,
                              child_id=kid_.id, period_id=term.id, kind="booking", status="accepted",
                              confirm_key=f"billed-{kid_.id}-{months_ago}", created_by_id=parent)
    db.add(reservation)
    db.flush()
    for day in days:
        for unit in db.exec(select(Unit).where(Unit.code.in_(["cantine", "accueil-soir"]))):
            line = ReservationLine(reservation_id=reservation.id, unit_id=unit.id, day=day, action="book",
                                   outcome="accepted", state="accepted")
            db.add(line)
            db.flush()
            db.add(Booking(child_id=kid_.id, unit_id=unit.id, day=day, status="accepted", line_id=line.id,
                           family_id=kid_.family_id))
    db.commit()
    billing.run(db.get_bind(), last_month, today, mail=mail, notice_days=notice_days)
    invoice = db.exec(select(Invoice).where(Invoice.family_id == kid_.family_id).order_by(Invoice.id.desc())).first()
    if cheque_cents:
        billing.record_counter_payment(db, agent.id, invoice, cheque_cents, "cheque", "Chèque n° 0001234")
    db.refresh(invoice)
    return invoice


def weekday_ahead(at_least: int, after: date | None = None) -> date:
    """The first Monday-Friday that is no public holiday, at least ``at_least`` days after ``after``
    (today)."""
    day = (after or paris_today(utcnow())) + timedelta(days=at_least)
    while day.weekday() > 4 or planning.holiday_name(day):
        day += timedelta(days=1)
    return day


def reservation_with_a_request(db, name="Zoé") -> Reservation:
    """The child's reservation in the centre, confirmed through the planning: two mornings accepted
    (ten days ahead or more), one morning three days ahead (a request for an agent) and a whole day
    that was full (the waiting list)."""
    kid_, period, made = child(db, name), town_period(db), units(db)
    now = utcnow()
    accepted = [weekday_ahead(10)]
    accepted.append(weekday_ahead(1, accepted[0]))
    full = weekday_ahead(2, accepted[1])
    db.add(DaySlot(unit_id=made["journee"].id, day=full, taken=made["journee"].capacity))
    db.commit()
    for day in (*accepted, weekday_ahead(3)):
        planning.toggle(db, kid_, period, made["matinee"].id, day, now)
    planning.toggle(db, kid_, period, made["journee"].id, full, now)
    draft = db.exec(select(Draft).where(Draft.child_id == kid_.id)).one()
    with writing_session(db.get_bind()) as w:
        reservation = planning.confirm(w, parent_id(db, name), w.get(Child, kid_.id), w.get(Period, period.id),
                                       draft.revision, now)
        reservation_id = reservation.id
    db.expire_all()
    return db.get(Reservation, reservation_id)


def family_change(db, name="Haddad", **fields) -> ChangeRequest:
    """A change of the family's file asked by its first login, waiting for an agent."""
    family = db.exec(select(Family).where(Family.name == name)).one()
    parent = db.exec(select(User).where(User.family_id == family.id).order_by(User.id)).first()
    after = family_service.family_snapshot(family)
    after["family"].update(fields or {"phone_home": "01 44 55 66 77"})
    return family_service.request_family_change(db, parent, family, after)


def family_invoice(db, name="Durand") -> Invoice:
    """The family's one invoice (``billed_month``), as the database holds it now."""
    db.expire_all()
    family = db.exec(select(Family).where(Family.name == name)).one()
    return db.exec(select(Invoice).where(Invoice.family_id == family.id)).one()


def town_period(db, name=TOWN):
    """The period around today of the centre (or of the school, ``name=SCHOOL``)."""
    today = paris_today(utcnow())
    return db.exec(select(Period).join(Establishment).where(Establishment.name == name, Period.start_date <= today,
                                                            Period.end_date >= today)).one()


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


def at_once(calls: dict) -> dict:
    """Run each of ``calls`` (name -> function) in its own thread, all released at the same instant; their
    results by name. Every failure shows: none may vanish in a thread."""
    results, errors, barrier = {}, [], threading.Barrier(len(calls))

    def go(name, call):
        try:
            barrier.wait()
            results[name] = call()
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=go, args=item) for item in calls.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return results


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


DEMO_PARENT, DEMO_CHILD, DEMO_CENTRE = "parent@demo.test", "Léa Martin", "Accueil de loisirs Les Lutins"


def login(page, email=PARENT, password=None):
    page.goto("/")
    page.get_by_label("Identifiant (adresse mail)").fill(email)
    page.get_by_label("Mot de passe").fill(password or PASSWORDS.get(email) or demo_data.DEMO_ACCOUNTS[email])
    page.get_by_role("button", name="Connexion").click()


def open_planning_from_the_window(page, button="Nouvelle réservation", heading=None, child="Zoé Durand", centre=TOWN):
    """The window of the guide: child, establishment, period, "Continuer" (an htmx dialog)."""
    page.wait_for_load_state("load")  # a click before htmx has started opens the plain page instead
    page.get_by_role("link", name=button).click()
    dialog = page.get_by_role("dialog", name=button)
    expect(dialog).to_be_visible()
    dialog.get_by_label(child).check()
    dialog.get_by_label(centre).check()
    # the window grew with the next step below, the focus stayed on the choice (no jump, RGAA 7.4)
    expect(dialog.get_by_text("3. La période")).to_be_visible()
    expect(dialog.get_by_label(centre)).to_be_focused()
    dialog.locator("input[name=periode]").first.check()
    dialog.get_by_role("button", name="Continuer").click()
    expect(page.get_by_role("heading", name=heading or f"Planning de {child}")).to_be_visible()


HX = {"HX-Request": "true"}


def centre(db):
    """The centre of the fixture town, its period around today and its units by code."""
    est = db.exec(select(Establishment).where(Establishment.name == TOWN)).one()
    return est, town_period(db), {u.code: u for u in db.exec(select(Unit).where(Unit.establishment_id == est.id))}


def school_period(db):
    return town_period(db, SCHOOL)


def bookable_day(db, period, unit, child, outcome="accepted"):
    """A day of the period where ``unit`` is available with that outcome today."""
    now = utcnow()
    days = planning.all_period_days(period)
    plan = planning.load_planning(db, child, period, days, now)
    for day in days:
        c = plan.cell(unit, day)
        if c.state == "available" and plan.outcome(unit, day) == outcome:
            return day
    raise AssertionError(f"no {outcome} day in the period")


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


def tab_to(page, locator, limit=120):
    """Press Tab until ``locator`` has the focus (it must be reachable by keyboard)."""
    for _ in range(limit):
        if locator.evaluate("e => e === document.activeElement"):
            outline = locator.evaluate("e => getComputedStyle(e).outlineStyle + ' ' + getComputedStyle(e).boxShadow")
            assert outline != "none none", "no visible focus"
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{locator} cannot be reached with the Tab key")


WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def violations(page) -> list[str]:
    """axe-core's WCAG 2.1 AA violations on the page as it is now, one line each."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    result = page.evaluate("async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}})).violations",
                           WCAG)
    return [f"{v['id']}: {v['help']} — {[n['target'] for n in v['nodes']][:3]}" for v in result]
