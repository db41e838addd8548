"""Static files: addresses that carry their content's hash and are cached for good, every icon in one
sprite, the logo inside the page; a planning's cold load is a handful of requests (issue 16)."""
import html
import io
import re
from pathlib import Path

from flask import url_for
from PIL import Image

from services import assets
from services.billing import INVOICE_STATES, PAYMENT_STATES
from services.planning import RESERVATION_STATES, STATES
from services.planning.states import OUTCOME_ICONS
from tests.conftest import page_text
from tests.factories import centre, child, login, planning_url, weekday_ahead

ROOT = Path(__file__).resolve().parents[1]
ICONS = ROOT / "static" / "icons"


def test_the_sprite_is_made_from_the_icons_beside_it():
    assert (ICONS / assets.SPRITE).read_text() == assets.build_sprite(ICONS), "run `make sprite`"


def test_every_state_icon_a_page_names_is_in_the_sprite():
    sprite = (ICONS / assets.SPRITE).read_text()
    named = {icon for _, icon, _ in STATES.values()} | set(OUTCOME_ICONS.values())
    for table in (RESERVATION_STATES, INVOICE_STATES, PAYMENT_STATES):
        named |= {icon for _, icon in table.values()}
    css = (ROOT / "static" / "ribambelle.css").read_text()
    named |= set(re.findall(r'icons/sprite\.svg#state-([a-z-]+)', css))
    missing = [icon for icon in named if f'<svg id="state-{icon}"' not in sprite]
    assert named and missing == []


def test_static_addresses_carry_their_hash_and_are_cached_for_good(client):
    page = page_text(client.get("/"))
    address = re.search(r'href="(/static/ribambelle\.css\?v=([0-9a-f]{12}))"', page)
    assert address, "the CSS address has no version"
    assert address.group(2) == assets.versions(ROOT / "static")["ribambelle.css"]
    response = client.get(address.group(1))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    stale = client.get("/static/ribambelle.css?v=000000000000")  # an old page's address: asked again
    assert "immutable" not in stale.headers.get("Cache-Control", "")
    raw = client.get("/").get_data(as_text=True)  # the attribute as written, then as the browser reads it
    logo = html.unescape(re.search(r'rel="icon" href="(data:image/svg\+xml,[^"]+)"', raw).group(1))
    assert "/static/icons/ribambelle.svg" not in page
    assert "#" not in logo and "%23fff" in logo  # a "#" would end the address at the first colour


def test_a_planning_cold_load_is_five_requests_and_draws_its_icons(page, browser, live_server, db):
    _, period, _ = centre(db)
    zoe, day = child(db, "Zoé"), weekday_ahead(12)
    login(page)
    page.wait_for_load_state("networkidle")
    # A browser with the session and nothing in its cache opens the planning.
    context = browser.new_context(base_url=live_server, storage_state=page.context.storage_state(),
                                  viewport={"width": 360, "height": 780})
    fresh = context.new_page()
    seen = []
    fresh.on("response", lambda r: seen.append(r.url.replace(live_server, "")))
    fresh.goto(planning_url(zoe, period, day))
    fresh.wait_for_load_state("networkidle")
    assert seen[0].startswith("/reservations/planning/")
    assert sorted(re.sub(r"\?v=[0-9a-f]{12}", "", u) for u in seen[1:]) == [
        "/static/app.js", "/static/htmx-2.0.11.min.js", "/static/icons/sprite.svg", "/static/ribambelle.css"]
    # The cell's icon is drawn from the sprite: the blue ring (#1f4e9c) of a free day is on screen.
    button = fresh.locator(f"#cell-{day.isoformat()}-matinee button")
    drawn = button.evaluate("(b) => getComputedStyle(b, '::before').backgroundImage")
    assert "/static/icons/sprite.svg#state-available" in drawn
    shot = button.screenshot()
    context.close()
    assert _has_colour(shot, (0x1f, 0x4e, 0x9c))


def _has_colour(png: bytes, rgb: tuple[int, int, int], tolerance: int = 40) -> bool:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    colours = [colour for _, colour in image.getcolors(image.width * image.height)]
    return any(all(abs(a - b) <= tolerance for a, b in zip(colour, rgb)) for colour in colours)


def test_addresses_the_portal_keeps_are_those_flask_builds(app):
    """``url_for`` keeps the addresses it built (app.Portal): each stays the one Flask builds for its
    values, its anchor and the root the portal is served under (a town behind a path prefix)."""
    built = []
    for root in ("", "/famille"):  # the same process, served at the root then under a prefix
        for _ in range(2):  # built, then kept
            with app.test_request_context("/", base_url=f"http://localhost{root}/"):
                built.append((url_for("reservations.planning_page", child_id=1, period_id=2, mois="2027-07"),
                              url_for("reservations.planning_page", child_id=1, period_id=3),
                              url_for("account.home", _anchor="factures"), url_for("account.home"),
                              url_for("static", filename="ribambelle.css")))
    version = assets.versions(ROOT / "static")["ribambelle.css"]
    expected = ["/reservations/planning/1/2?mois=2027-07", "/reservations/planning/1/3", "/compte/#factures", "/compte/",
                f"/static/ribambelle.css?v={version}"]
    assert built[0] == built[1] == tuple(expected)
    assert built[2] == built[3] == tuple(f"/famille{url}" for url in expected)
    with app.test_request_context("/"):  # what is not kept: a list of values, an external address
        assert url_for("account.home", onglet=["a", "b"]) == "/compte/?onglet=a&onglet=b"
        assert url_for("account.home", _external=True) == "http://localhost/compte/"
    app.URLS_KEPT = 3
    with app.test_request_context("/"):
        for period in range(10):
            url_for("reservations.planning_page", child_id=1, period_id=period)
    assert len(app._urls) <= 3
