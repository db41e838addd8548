"""Fixtures: the app on a real SQLite file and on PostgreSQL, a client with CSRF, logins, a real
SMTP server on loopback, a live server and Debian's Chromium driven by Playwright.

Every test that uses ``app`` runs once per backend: ``sqlite`` always, ``postgresql`` when a server
answers at RIBAMBELLE_TEST_PG_URL (skipped, saying so, when none does; a failure when
RIBAMBELLE_REQUIRE_PG is set, as in CI).
"""
from __future__ import annotations

import email
import html
import os
import re
import shutil
import socket
import sys
import threading
import time
from datetime import date
from email.policy import default as default_policy
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlmodel import Session, SQLModel, select

from app import create_app
from db import get_db
from models import ClosedDay, Establishment, Period, PeriodUnit
from services import demo_data, migrations, periods
from tests.factories import AXE, PARENT, PASSWORDS, TOWN, billed_month, csrf_from, make_town, paris, town_units

PG_ADMIN_URL = os.environ.get("RIBAMBELLE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
CHROMIUM = "/usr/bin/chromium"

TEST_SETTINGS = {
    "TESTING": True,
    "SECRET_KEY": "test-secret-key-not-for-production",
    "ARGON2_TIME_COST": 1,
    "ARGON2_MEMORY_COST": 1024,
    "SERVER_NAME": None,
    "BASE_URL": "http://localhost",  # the test client's host: links in mails open with it
    "MAIL_SUPPRESS_SEND": False,  # Flask-Mail would pretend to send under TESTING
    "OUTBOX_SYNC": True,  # a mail leaves during the request that wrote it: tests read it at once
}


def pytest_addoption(parser):
    parser.addoption(
        "--backends",
        default=os.environ.get("RIBAMBELLE_TEST_BACKENDS", "sqlite,postgresql"),
        help="comma-separated database backends to run the suite on",
    )


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        backends = metafunc.config.getoption("--backends").split(",")
        only = metafunc.definition.get_closest_marker("backends")  # @pytest.mark.backends("postgresql")
        if only:
            backends = [b for b in backends if b in only.args]
        metafunc.parametrize("backend", backends, scope="session")


def missing(what: str) -> None:
    """A part the suite needs is absent: a skip that says so on a developer's machine, a failure in CI.

    With CI=true (and RIBAMBELLE_REQUIRE_PG, set by .ci/run) the suite can never be green by skipping
    the browser, axe-core, nginx or PostgreSQL.
    """
    if os.environ.get("CI") == "true" or os.environ.get("RIBAMBELLE_REQUIRE_PG"):
        pytest.fail(f"{what} (required in CI)", pytrace=False)
    pytest.skip(what)


# --- databases ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A SQLite file migrated once with Alembic; each test gets a copy."""
    path = tmp_path_factory.mktemp("db") / "template.sqlite"
    migrations.upgrade(f"sqlite:///{path}")
    return path


def _pg_answers() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_database():
    """A PostgreSQL database of this test run, migrated once; tables are emptied before each test."""
    if not _pg_answers():
        missing(f"PostgreSQL does not answer at {PG_ADMIN_URL}: PostgreSQL tests skipped")
    name = f"ribambelle_test_{os.getpid()}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    migrations.upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def database_url(backend, request, tmp_path) -> str:
    if backend == "sqlite":
        path = tmp_path / "ribambelle.sqlite"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("pg_database")
    engine = create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


# --- the app --------------------------------------------------------------------------------------


@pytest.fixture
def make_app(database_url, tmp_path):
    """Build an app on this test's database; extra settings override the test ones."""
    apps = []

    def factory(**settings):
        config = {**TEST_SETTINGS, "DATABASE_URL": database_url, **settings}
        app = create_app(config)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.extensions["ribambelle.engine"].dispose()


@pytest.fixture
def app_settings() -> dict:
    """Settings a test module adds to its app (override this fixture in the module)."""
    return {}


@pytest.fixture
def app(make_app, request, app_settings):
    """The fixture town (``tests.factories.make_town``) on this test's database, or the demo town for a
    test marked ``demo`` (the journeys that walk it as a visitor would); mail goes to the loopback SMTP
    server when asked for."""
    settings = dict(app_settings)
    if "smtp" in request.fixturenames:
        smtp = request.getfixturevalue("smtp")
        settings.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp.port)
    app = make_app(**settings)
    with app.app_context():
        if request.node.get_closest_marker("demo"):
            demo_data.seed(get_db(), app.extensions["ribambelle.hasher"])
        else:
            make_town(get_db(), app.extensions["ribambelle.hasher"])
    return app


@pytest.fixture
def db(app, database_url):
    """A database session to check what the app stored.

    Its own plain engine: each read sees what the app committed last (no long read snapshot).
    """
    engine = create_engine(database_url)
    with Session(engine, expire_on_commit=False) as session:
        yield session
    engine.dispose()


def page_text(response) -> str:
    """The page as a reader sees it: HTML entities decoded (n&#39;est -> n'est)."""
    return html.unescape(response.get_data(as_text=True))


@pytest.fixture
def db_factory():
    """Open a session on any app's database (closed at the end of the test)."""
    sessions = []

    def factory(app):
        session = Session(create_engine(app.config["DATABASE_URL"]), expire_on_commit=False)
        sessions.append(session)
        return session

    yield factory
    for session in sessions:
        session.close()
        session.get_bind().dispose()


class Client:
    """The test client, with a helper that posts a form the way a browser does (CSRF included)."""

    def __init__(self, flask_client):
        self.raw = flask_client

    def get(self, *args, **kwargs):
        return self.raw.get(*args, **kwargs)

    def post(self, *args, **kwargs):
        return self.raw.post(*args, **kwargs)

    def submit(self, page_url: str, data: dict, action: str | None = None, **kwargs):
        """GET ``page_url``, take its CSRF token, POST ``data`` to ``action`` (default: the page)."""
        page = self.raw.get(page_url, follow_redirects=True)
        token = csrf_from(page.get_data(as_text=True))
        return self.raw.post(action or page_url, data={"csrf_token": token, **data}, **kwargs)


@pytest.fixture
def client(app):
    return Client(app.test_client())


class Auth:
    def __init__(self, client: Client):
        self.client = client

    def login(self, email=None, password=None):
        email = email or PARENT
        password = password or PASSWORDS.get(email) or demo_data.DEMO_ACCOUNTS[email]
        return self.client.submit("/", {"email": email, "password": password})

    def logout(self):
        return self.client.submit("/", {}, action="/deconnexion")


@pytest.fixture
def auth(client):
    return Auth(client)


# --- mail -----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SMTPServer:
    """A real SMTP server (aiosmtpd) on loopback that keeps what it receives."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.port = free_port()
        self.messages: list[email.message.EmailMessage] = []
        server = self

        class Handler:
            async def handle_DATA(self, smtp, session, envelope):
                server.messages.append(email.message_from_bytes(envelope.content, policy=default_policy))
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def start(self):
        self.controller.start()

    def stop(self):
        self.controller.stop()

    def to(self, address: str) -> list:
        return [m for m in self.messages if address in m["To"]]

    def wait_for(self, address: str, count: int = 1, timeout: float = 10.0) -> list:
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = self.to(address)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no mail for {address} after {timeout}s (got {len(self.to(address))})")

    @staticmethod
    def text(message) -> str:
        return message.get_body(preferencelist=("plain",)).get_content()

    @classmethod
    def link(cls, message) -> str:
        match = re.search(r"https?://\S+", cls.text(message))
        assert match, "no link in the mail"
        return match.group(0)


@pytest.fixture
def smtp():
    server = SMTPServer()
    server.start()
    yield server
    server.stop()


# --- accessibility results ------------------------------------------------------------------------

A11Y_PAGES: dict[str, dict] = {}  # axe-core's findings per page and dialog, filled by the accessibility tests
_a11y_outcomes: dict[str, list[str]] = {}  # test id without parameters -> outcome of each of its runs
_a11y_deselected: set[str] = set()


def require_axe() -> None:
    if not AXE.exists():
        missing("axe-core missing: make test installs it (npm)")


def _base_id(nodeid: str) -> str:
    return nodeid.split("[", 1)[0]


def pytest_deselected(items):
    from services import accessibility

    _a11y_deselected.update(_base_id(i.nodeid) for i in items if _base_id(i.nodeid) in accessibility.CHECKS)


def pytest_runtest_logreport(report):
    from services import accessibility

    test = _base_id(report.nodeid)
    if test in accessibility.CHECKS and (report.when == "call" or report.outcome != "passed"):
        _a11y_outcomes.setdefault(test, []).append(report.outcome)


def pytest_sessionfinish(session, exitstatus):
    """Publish the accessibility results only from a complete run: every check of the statement ran, passed.

    Written to RIBAMBELLE_A11Y_RESULTS (``make accessibility``: static/accessibilite.json, which the
    statement page reads), else under the run's temporary folder: a partial or ordinary run never
    changes what the public statement says.
    """
    from services import accessibility

    complete = not _a11y_deselected and all(
        _a11y_outcomes.get(test) and set(_a11y_outcomes[test]) == {"passed"} for test in accessibility.CHECKS)
    if not complete:
        return
    target = os.environ.get("RIBAMBELLE_A11Y_RESULTS")
    path = Path(target) if target else session.config._tmp_path_factory.getbasetemp() / "accessibilite.json"
    # The tests fill A11Y_PAGES of ``tests.conftest``, which they import; pytest loaded this file as
    # ``conftest``, another module object: take the pages from the one the tests wrote to.
    pages = getattr(sys.modules.get("tests.conftest"), "A11Y_PAGES", A11Y_PAGES)
    accessibility.save_results(path, pages, sorted(accessibility.CHECKS))


# --- live server and browser ----------------------------------------------------------------------


@pytest.fixture
def live_server(app):
    """The app served by a real HTTP server in a thread; yields its base URL."""
    from werkzeug.serving import make_server

    port = free_port()
    app.config["BASE_URL"] = f"http://127.0.0.1:{port}"
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    thread.join(5)


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        missing(f"{CHROMIUM} missing: browser journeys skipped (make browser installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server, locale="fr-FR", viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.set_default_timeout(10000)
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.console_errors = errors
    yield page
    context.close()
    # Every journey on the real CSP: nothing it refused (an inline style or script) on any page it met.
    refused = [text for text in errors if "Content Security Policy" in text]
    assert refused == [], refused


# --- invariants -----------------------------------------------------------------------------------


def place_drift(db) -> dict:
    """Places taken beyond the bookings that hold them, per unit and day (the demo fills two days with
    families from outside it): a fault must never change it."""
    from sqlalchemy import text

    db.expire_all()
    return {(unit, str(day)): taken - held for unit, day, taken, held in db.execute(text(
        """SELECT s.unit_id, s.day, s.taken, count(b.id) FROM dayslot s
           LEFT JOIN booking b ON b.unit_id = s.unit_id AND b.day = s.day AND b.status IN ('accepted', 'request')
           GROUP BY s.unit_id, s.day, s.taken HAVING s.taken <> count(b.id)""")).all()}


def check_invariants(db, drift_before: dict | None = None) -> None:
    """What no fault may break, read from the database; the fault tests call it after each fault.

    Places taken match the bookings that hold them (as they did before the fault: ``drift_before``,
    from ``place_drift``) and never exceed the capacity; every reservation has lines; reservation
    numbers are unique and within their counter; each invoice's paid amount is what its validated
    payments brought, less what became a credit.
    """
    from sqlalchemy import text

    def rows(sql):
        return db.execute(text(sql)).all()

    drift = place_drift(db)
    assert drift == (drift_before or {}), f"places taken differ from the bookings holding them: {drift}"
    over = rows("""SELECT s.unit_id, s.day, s.taken FROM dayslot s JOIN unit u ON u.id = s.unit_id
                   WHERE s.taken > COALESCE(s.capacity, u.capacity)""")
    assert over == [], f"overbooked: {over[:5]}"
    empty = rows("""SELECT r.number FROM reservation r LEFT JOIN reservationline l ON l.reservation_id = r.id
                    GROUP BY r.number HAVING count(l.id) = 0""")
    assert empty == [], f"reservations without lines: {empty[:5]}"
    numbers = [n for (n,) in rows("SELECT number FROM reservation")]
    assert len(numbers) == len(set(numbers))
    counters = dict(rows("SELECT name, value FROM counter"))
    for number in numbers:
        year, sequence = number.split("-")[1], int(number.split("-")[2])
        assert any(year in name and sequence <= value for name, value in counters.items()), number
    money = rows("""SELECT i.number, i.paid_cents,
                           COALESCE((SELECT sum(p.amount_cents) FROM payment p WHERE p.invoice_id = i.id AND p.status = 'paid'), 0),
                           COALESCE((SELECT sum(c.amount_cents) FROM credit c WHERE c.invoice_id = i.id), 0)
                    FROM invoice i""")
    wrong = [m for m in money if m[1] != m[2] - m[3]]
    assert wrong == [], f"paid amounts differ from the payments: {wrong[:5]}"


# --- shared fixtures of the rules tests ---------------------------------------------------------


@pytest.fixture
def billed(db):
    """The Durand family's last month billed, 10 € of it paid by cheque (``usefixtures("billed")``)."""
    return billed_month(db)


@pytest.fixture
def summer(app, db):
    """Vacances d'été 2027 in the fixture town (5 July - 27 August), open Monday to Friday."""
    est_id = db.exec(select(Establishment.id).where(Establishment.name == TOWN)).one()
    period = Period(establishment_id=est_id, name="Vacances d'été 2027", start_date=date(2027, 7, 5),
                    end_date=date(2027, 8, 27), booking_opens_at=paris(2027, 6, 1, 8),
                    booking_closes_at=paris(2027, 8, 20, 18), auto_accept_days=8, min_days=2)
    db.add(period)
    db.flush()
    for unit in town_units(db):
        db.add(PeriodUnit(period_id=period.id, unit_id=unit.id, weekdays="01234" if unit.code != "repas" else "0134"))
    db.add(ClosedDay(period_id=period.id, day=date(2027, 7, 16), reason="Sortie du personnel : fermé"))
    periods.close_holidays(db, period)  # 14 July, as the admin page does for a new period
    db.commit()
    return period
