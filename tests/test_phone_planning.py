"""The planning on a phone (issue 14): at 360 × 740 and 320 × 640, JavaScript on and off, with five units.

The whole day row fits the screen's width, the first week is visible on arrival above the counter bar,
the unit headings stay at the top while the days scroll, every control stays inside the screen and
each cell is a tap target of at least 44 × 44 px.
"""
import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from models import DraftLine, Establishment, Invoice, Period, PeriodUnit, Unit
from services import planning
from services.formatting import euros
from tests.factories import DEMO_PARENT, login

pytestmark = pytest.mark.demo  # walks the demo town as a visitor of `make run` would


def add_fifth_unit(db):
    """The demo centre has four units: a fifth one, as the largest centres have."""
    est = db.exec(select(Establishment).where(Establishment.name == "Accueil de loisirs Les Lutins")).one()
    period = db.exec(select(Period).where(Period.establishment_id == est.id)).one()
    unit = Unit(establishment_id=est.id, code="accueil-soir", label="Accueil du soir", position=5, capacity=10)
    db.add(unit)
    db.flush()
    db.add(PeriodUnit(period_id=period.id, unit_id=unit.id, weekdays="01234"))
    db.commit()
    return period


@pytest.mark.parametrize("width, height", [(360, 740), (320, 640)])
@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_the_month_fits_a_phone(browser, live_server, db, width, height, javascript, tmp_path):
    period = add_fifth_unit(db)
    context = browser.new_context(base_url=live_server, locale="fr-FR", viewport={"width": width, "height": height},
                                  java_script_enabled=javascript)
    page = context.new_page()
    login(page, DEMO_PARENT)
    page.goto(f"/reservations/planning/1/{period.id}")
    expect(page.get_by_role("heading", name="Planning de Léa Martin")).to_be_visible()
    page.screenshot(path=str(tmp_path / "planning.png"))
    table = page.locator(".planning-table")
    assert table.evaluate("t => t.scrollWidth <= t.parentElement.clientWidth")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert page.locator(".planning-table thead th").count() == 6  # the day, then five units

    rows = page.locator(".planning-table tbody tr")
    bar_top = page.locator("#planning-counter").bounding_box()["y"]
    first = rows.first.bounding_box()
    assert first["y"] + first["height"] <= bar_top  # the first day, on arrival, not under the bar
    if width == 360:  # the first week: every row before the first Monday after the first day
        labels = rows.locator("th").all_inner_texts()
        week = next((i for i, label in enumerate(labels) if i and label.startswith("lun")), len(labels))
        last = rows.nth(week - 1).bounding_box()
        assert last["y"] + last["height"] <= bar_top, (week, last, bar_top)

    # Every control of the bar and the headings inside the screen; headings name the full unit.
    for control in page.locator(".planning-bar a, .planning-bar button:visible, .planning-bar select, "
                                ".planning-bar summary, .planning-table thead summary").all():
        box = control.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, control.inner_text()
    expect(page.locator(".planning-table thead summary").last).to_have_accessible_name("Options pour Accueil du soir")
    caption = page.locator(".planning-table caption").bounding_box()
    assert caption["x"] >= 0 and caption["x"] + caption["width"] <= width + 0.5
    for cell in page.locator(".cell > button").all()[:40]:
        box = cell.bounding_box()
        assert box["width"] >= 44 and box["height"] >= 44

    # A unit's menu opens whole inside the screen, every item of it (JavaScript or not: a <details>).
    menu = page.locator(".planning-table thead details.unit-menu").last
    menu.locator("summary").click()
    for item in menu.locator(".menu-item").all():
        box = item.bounding_box()
        assert 0 <= box["y"] and box["y"] + box["height"] <= height and 0 <= box["x"] and box["x"] + box["width"] <= width
    menu.locator("summary").click()

    # Down to the last day: the unit headings are still at the top of the screen.
    rows.last.scroll_into_view_if_needed()
    heading = page.locator(".planning-table thead th").nth(1).bounding_box()
    assert 0 <= heading["y"] <= 5 and page.locator(".planning-table thead th").nth(1).is_visible()
    context.close()


def test_the_legend_opens_with_one_tap_and_closes_with_escape(browser, live_server, db):
    context = browser.new_context(base_url=live_server, locale="fr-FR", viewport={"width": 360, "height": 740},
                                  has_touch=True, is_mobile=True)
    page = context.new_page()
    login(page, DEMO_PARENT)
    page.goto("/reservations/planning/1/1")
    legend = page.locator("#planning-month details.legend")
    panel = legend.locator(".legend-panel")
    legend.locator("summary").tap()
    expect(panel).to_be_visible()  # one tap shows it (the hover is for a mouse only)
    box = panel.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 360
    legend.locator("summary").tap()
    expect(panel).to_be_hidden()  # one tap closes it
    legend.locator("summary").tap()
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(legend.locator("summary")).to_be_focused()
    menu = page.locator(".planning-table thead details.unit-menu").first
    menu.locator("summary").tap()
    expect(menu.locator(".menu")).to_be_visible()
    for item in menu.locator(".menu-item").all():  # the unit's menu inside the screen
        box = item.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 360
    page.keyboard.press("Escape")
    expect(menu.locator(".menu")).to_be_hidden()
    context.close()


def test_the_legend_still_opens_on_mouse_hover(page):
    login(page, DEMO_PARENT)
    page.goto("/reservations/planning/1/1")
    legend = page.locator("#planning-month details.legend")
    legend.locator("summary").hover()
    expect(legend.locator(".legend-panel")).to_be_visible()
    page.mouse.move(5, 5)
    expect(legend.locator(".legend-panel")).to_be_hidden()


def test_every_cell_is_named_and_tooltips_stay_in_the_screen(browser, live_server, db, tmp_path):
    context = browser.new_context(base_url=live_server, locale="fr-FR", viewport={"width": 360, "height": 740})
    page = context.new_page()
    login(page, DEMO_PARENT)
    page.goto("/reservations/planning/1/1")
    # Every focusable thing in the grid has a role and a name that says the day, the unit and the state.
    found = page.evaluate("""() => [...document.querySelectorAll('.planning-table tbody [tabindex], .planning-table tbody button')]
        .map(e => ({tag: e.tagName, role: e.getAttribute('role'), text: e.textContent.replace(/\\s+/g, ' ').trim()}))""")
    assert found and all(f["tag"] == "BUTTON" for f in found)
    locked = page.locator("td.cell--locked button, td.cell--closed button").first
    name = locked.evaluate("e => e.textContent.replace(/\\s+/g, ' ')")
    assert re.search(r"(lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche) \d+ \w+ \d{4}, \w", name), name
    assert locked.get_attribute("aria-disabled") == "true"
    # A locked day's reason: inside the screen, whichever column, kept while hovered, hidden with Escape.
    tipped = page.locator("td.cell [data-tip]")
    for index in sorted({0, tipped.count() - 1}):
        tip = tipped.nth(index)
        tip.focus()
        box = tip.evaluate("""e => { const s = getComputedStyle(e, '::after'); const r = e.getBoundingClientRect();
            return {display: s.display, left: r.left + parseFloat(s.left === 'auto' ? r.width - parseFloat(s.right) - parseFloat(s.width) : s.left)
                    - (s.transform !== 'none' ? parseFloat(s.width) / 2 : 0), width: parseFloat(s.width)}; }""")
        assert box["display"] != "none" and box["left"] >= 0 and box["left"] + box["width"] <= 360, box
    page.screenshot(path=str(tmp_path / "tooltip.png"))
    tip = tipped.first
    tip.hover()
    below = tip.bounding_box()  # the pointer moved onto the tooltip (under the cell): it stays
    page.mouse.move(below["x"] + 10, below["y"] + below["height"] + 8)
    assert tip.evaluate("e => getComputedStyle(e, '::after').display") != "none"
    page.keyboard.press("Escape")
    assert tip.evaluate("e => getComputedStyle(e, '::after').display") == "none"
    page.mouse.move(1, 1)
    tip.hover()
    assert tip.evaluate("e => getComputedStyle(e, '::after').content") != "none"  # back when hovered again
    context.close()


def test_focus_and_announcements_stay_with_the_parent(page, db):
    period = db.get(Period, 1)
    months = planning.period_months(period)
    assert len(months) >= 3  # the demo period: a month before and after the one shown
    login(page, DEMO_PARENT)
    page.goto(f"/reservations/planning/1/1?mois={months[-2]:%Y-%m}")
    page.wait_for_load_state("load")
    live = page.locator("#planning-live")
    live.evaluate("e => { e.dataset.original = '1'; }")  # the same element all along: not replaced
    cell = page.locator("td.cell--available button").first
    cell.click()
    expect(live).to_contain_text(re.compile(r"\(à confirmer\)\. 1 case sélectionnée en tout\."))
    page.get_by_role("link", name=re.compile("Mois suivant")).click()
    expect(live).to_contain_text("affiché")
    expect(page.get_by_label("Mois", exact=True)).to_be_focused()  # no month after this one: the month picker
    page.get_by_role("link", name=re.compile("Mois précédent")).click()
    expect(page.locator("#planning-month caption")).to_contain_text(f"{months[-2]:%Y}")
    expect(page.get_by_role("link", name=re.compile("Mois précédent"))).to_be_focused()  # kept on the new one
    # After the automatic selection, the focus comes back to the unit's menu, and a skip link leads on.
    page.locator("summary", has_text="Après-midi").click()
    page.locator("details.unit-menu[open]").get_by_role("link", name="Sélection automatique des jours").click()
    dialog = page.get_by_role("dialog", name=re.compile("Sélection automatique des jours"))
    dialog.get_by_label("Lundi").check()
    dialog.get_by_role("button", name="Valider").click()
    expect(dialog).to_have_count(0)
    expect(live).to_contain_text("Après-midi")
    expect(page.locator("#menu-apres-midi > summary")).to_be_focused()
    assert live.evaluate("e => e.dataset.original") == "1"
    page.get_by_role("link", name="Aller à la validation du planning").focus()
    page.keyboard.press("Enter")  # one key from the top of the month to its action, however many cells
    target = page.get_by_role("link", name="Valider le planning", exact=True)
    expect(target).to_be_focused()
    expect(target).to_be_in_viewport()


def test_the_check_screen_says_what_comes_first_and_keeps_its_action_at_hand(browser, live_server, db, tmp_path):
    context = browser.new_context(base_url=live_server, locale="fr-FR", viewport={"width": 360, "height": 740})
    page = context.new_page()
    login(page, DEMO_PARENT)
    page.goto("/reservations/planning/1/1")
    page.wait_for_load_state("load")
    page.locator("summary", has_text="Mat").click()
    page.locator("details.unit-menu[open]").get_by_role("button", name="Sélectionner les jours de la période").click()
    expect(page.locator("#planning-live")).to_contain_text("sélectionnés")
    page.get_by_role("link", name="Valider le planning").click()
    expect(page.get_by_role("heading", name="Vérifiez les jours de réservation")).to_be_visible()
    page.screenshot(path=str(tmp_path / "recap.png"))
    lines = db.exec(select(DraftLine)).all()
    assert len(lines) > 10
    expect(page.locator(".recap-summary")).to_contain_text(re.compile(rf"{len(lines)} cases : \d+ réservations? acceptées?"))
    weeks = {line.day - timedelta(days=line.day.weekday()) for line in lines}
    expect(page.locator("table.recap-week caption")).to_have_count(len(weeks))
    expect(page.locator("table.recap-week caption").first).to_contain_text("Semaine du")
    expect(page.get_by_role("button", name="Confirmer la réservation")).to_be_in_viewport()  # on arrival
    page.get_by_role("button", name="Confirmer la réservation").click()
    expect(page.get_by_role("heading", name="Votre réservation est enregistrée")).to_be_visible()
    context.close()


COVERED = """() => { const e = document.activeElement; const r = e.getBoundingClientRect();
    const x = Math.min(Math.max(r.left + r.width / 2, 0), innerWidth - 1), y = r.top + Math.min(r.height / 2, 10);
    if (r.bottom < 0 || r.top > innerHeight) { return 'off screen'; }
    const hit = document.elementFromPoint(x, y); return hit && (e === hit || e.contains(hit)) ? '' : (hit ? hit.className || hit.tagName : 'nothing'); }"""


@pytest.mark.parametrize("width, height", [(1280, 720), (360, 740), (320, 256)], ids=["desktop", "phone", "400-percent"])
def test_a_focused_element_is_never_under_a_bar(browser, live_server, db, width, height):
    context = browser.new_context(base_url=live_server, locale="fr-FR", viewport={"width": width, "height": height})
    page = context.new_page()
    login(page, DEMO_PARENT)
    page.goto("/reservations/planning/1/1")
    page.wait_for_load_state("load")
    page.locator(".planning-table tbody button").first.focus()
    hidden = []
    for step in range(60):
        page.keyboard.press("Tab")
        where = page.evaluate(COVERED)
        if where:
            hidden.append((step, page.evaluate("document.activeElement.textContent.trim().slice(0, 40)"), where))
    assert hidden == []
    # In the middle of the month, the bars that stay on screen leave the days most of it (at 400 %
    # the counter and the headings would take 45 % of it: there they scroll with the page).
    page.locator(".planning-table tbody tr").nth(8).scroll_into_view_if_needed()
    stuck = page.evaluate("""() => [...document.querySelectorAll('body *')].filter(e => { const s = getComputedStyle(e);
            return ['sticky', 'fixed'].includes(s.position) && (s.top !== 'auto' || s.bottom !== 'auto'); })  // held vertically
        .map(e => e.getBoundingClientRect()).filter(r => r.bottom > 0 && r.top < innerHeight && r.height > 0)
        .map(r => [Math.max(r.top, 0), Math.min(r.bottom, innerHeight)]).sort((a, b) => a[0] - b[0])
        .reduce((acc, [top, bottom]) => { const end = Math.max(acc.end, top);  // the screen's height they cover, once
            return {end: Math.max(acc.end, bottom), sum: acc.sum + Math.max(0, bottom - end)}; }, {end: 0, sum: 0}).sum""")
    assert stuck <= 0.3 * height, stuck
    context.close()


@pytest.mark.parametrize("width, height", [(360, 740), (320, 640)])
def test_the_invoice_window_shows_the_money_on_a_phone(browser, live_server, db, width, height, tmp_path):
    invoice = db.exec(select(Invoice).order_by(Invoice.id)).first()
    context = browser.new_context(base_url=live_server, locale="fr-FR", viewport={"width": width, "height": height})
    page = context.new_page()
    login(page, DEMO_PARENT)
    page.wait_for_load_state("load")
    page.get_by_role("link", name=f"Voir la facture {invoice.number}").click()
    dialog = page.get_by_role("dialog", name=f"Facture {invoice.number}")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading", name=f"Facture {invoice.number}")).to_be_focused()  # opens at its title
    assert dialog.evaluate("d => d.scrollTop") == 0
    page.screenshot(path=str(tmp_path / "invoice.png"))
    # What is left to pay, by when, the total and what was paid: in the first screen, whole.
    money = dialog.locator(".money")
    for words in ("Reste à payer", "À payer avant le", "Total", "Déjà payé"):
        expect(money).to_contain_text(words)
    box = money.bounding_box()
    assert box["y"] + box["height"] <= height
    expect(money).to_contain_text(euros(invoice.left_cents))
    # Every price readable without sideways scrolling: each amount inside the window.
    assert dialog.evaluate("d => d.scrollWidth <= d.clientWidth")
    frame = dialog.bounding_box()
    for amount in dialog.locator("td.num").all():
        amount.scroll_into_view_if_needed()
        b = amount.bounding_box()
        assert b["x"] >= frame["x"] and b["x"] + b["width"] <= frame["x"] + frame["width"], amount.inner_text()
        assert "…" not in amount.inner_text() and "€" in amount.inner_text()
    context.close()
