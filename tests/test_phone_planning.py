"""The planning on a phone (issue 14): at 360 × 740 and 320 × 640, JavaScript on and off, with five units.

The whole day row fits the screen's width, the first week is visible on arrival above the counter bar,
the unit headings stay at the top while the days scroll, every control stays inside the screen and
each cell is a tap target of at least 44 × 44 px.
"""
import pytest
from playwright.sync_api import expect
from sqlmodel import select

from models import Establishment, Period, PeriodUnit, Unit
from tests.test_journeys import login


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
    login(page)
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
    for cell in page.locator(".cell > button").all()[:40]:
        box = cell.bounding_box()
        assert box["width"] >= 44 and box["height"] >= 44

    # Down to the last day: the unit headings are still at the top of the screen.
    rows.last.scroll_into_view_if_needed()
    heading = page.locator(".planning-table thead th").nth(1).bounding_box()
    assert 0 <= heading["y"] <= 5 and page.locator(".planning-table thead th").nth(1).is_visible()
    context.close()


def test_the_legend_opens_with_one_tap_and_closes_with_escape(browser, live_server, db):
    context = browser.new_context(base_url=live_server, locale="fr-FR", viewport={"width": 360, "height": 740},
                                  has_touch=True, is_mobile=True)
    page = context.new_page()
    login(page)
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
    login(page)
    page.goto("/reservations/planning/1/1")
    legend = page.locator("#planning-month details.legend")
    legend.locator("summary").hover()
    expect(legend.locator(".legend-panel")).to_be_visible()
    page.mouse.move(5, 5)
    expect(legend.locator(".legend-panel")).to_be_hidden()
