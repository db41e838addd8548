"""The stack's floor: what a click and a page cost at the least on this machine, the limits the portal is
measured against.

A bare Flask app served by the same gunicorn as the portal, on the same database engine settings
(``db.make_engine``). Nothing but what the request must do: no login check, no CSRF, no ORM; its
templates compiled once, as Flask keeps the portal's template files.

- ``POST /click?row=N``, the click: a signed session cookie read and written, one SELECT and one UPDATE
  of a row of its own and their commit (a click is a durable write), a 300-byte template;
- ``GET /page?cells=N&bytes=B``, the page: the session read, one SELECT of N rows, and a page drawing them
  as N cells of a month's table, each with the values a planning cell carries (its id, class, button
  value, target, shown word and spoken words: six escaped values, as in partials/reservations/_cell.html),
  padded with static text (a layout's stand-in) to B bytes, the size of the page it stands for;
- ``POST /signed/click?row=N``, the same click by a signed-in parent: what any click of a portal with
  accounts must add to it, with the extensions the portal is built on: Flask-Login's user, checked by
  one SELECT in the click's transaction (the account's session row, as the portal checks at every
  request, so that a logout anywhere ends it), and Flask-WTF's CSRF token, sent in a header as htmx
  sends it. ``GET /signed/login?user=N`` signs parent N in and answers the token (an app of its own,
  mounted there: the bare routes run none of these extensions' hooks);
- ``GET /healthz`` answers as the portal's.

    FLOOR_DATABASE_URL=sqlite:////tmp/floor.sqlite gunicorn 'tests.benchmarks.floor:create_app()'
"""
from __future__ import annotations

import os

from flask import Flask, abort, g, render_template, request, session
from flask_login import LoginManager, UserMixin, current_user, login_user
from flask_wtf.csrf import CSRFProtect, generate_csrf
from markupsafe import Markup
from sqlalchemy import text
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from db import make_engine

ROWS = 1000
PAGE_CELLS, PAGE_BYTES = 124, 54_000  # by default, the demo's planning page
UNITS = ["matin", "repas", "apres-midi", "soir"]
PAGE = """<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>Planning</title></head><body>
<header><p>{{ padding }}</p></header><main><table><caption>Planning</caption>
<thead><tr><th scope="col">Jour</th>{% for unit in units %}<th scope="col">{{ unit }}</th>{% endfor %}</tr></thead><tbody>
{% for day, cells in rows %}<tr><th scope="row">{{ day }}</th>
{% for id, css, value, short, spoken in cells %}<td id="{{ id }}" class="{{ css }}"><button form="cells" name="cellule" value="{{ value }}" hx-post="{{ target }}">{{ short }}<span class="visually-hidden"> — {{ spoken }}</span></button></td>
{% endfor %}</tr>{% endfor %}</tbody></table></main></body></html>"""
TEMPLATE = """<td id="cell-{{ row }}" class="cell cell--selected"><button type="button" aria-pressed="true">
<img src="/static/icons/selected.svg" alt="" width="16" height="16"> <span>Sélectionné ({{ value }})</span>
</button></td><p id="counter" hx-swap-oob="true"><strong>{{ clicks }}</strong> clics dans cette session</p>"""


class Parent(UserMixin):
    def __init__(self, user_id: int):
        self.id = user_id


def prepare(url: str) -> None:
    """The floor's own table: ROWS rows, one per parent clicking."""
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS floor_cell"))
        conn.execute(text("CREATE TABLE floor_cell (id INTEGER PRIMARY KEY, value INTEGER NOT NULL)"))
        conn.execute(text("INSERT INTO floor_cell (id, value) VALUES (:id, 0)"), [{"id": i} for i in range(ROWS)])
        conn.execute(text("DROP TABLE IF EXISTS floor_login"))
        conn.execute(text("CREATE TABLE floor_login (id INTEGER PRIMARY KEY, session_key VARCHAR(64) NOT NULL)"))
        conn.execute(text("INSERT INTO floor_login (id, session_key) VALUES (:id, :key)"),
                     [{"id": i, "key": f"key-{i}"} for i in range(ROWS)])
    engine.dispose()


def create_app(url: str | None = None) -> Flask:
    """The floor on ``url``, FLOOR_DATABASE_URL by default (gunicorn calls it without arguments)."""
    app = Flask(__name__)
    app.secret_key = "floor-secret"
    engine = make_engine(url or os.environ["FLOOR_DATABASE_URL"]).execution_options(sqlite_immediate=True)
    # Compiled once, as Flask keeps the portal's template files (rendering a string compiles it each time:
    # 0.4 ms, more than the rest of the click's Python).
    click_template, page_template = app.jinja_env.from_string(TEMPLATE), app.jinja_env.from_string(PAGE)

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    def click_row(conn, template) -> str:
        row = request.args.get("row", 0, type=int) % ROWS
        session["clicks"] = session.get("clicks", 0) + 1
        value = conn.execute(text("SELECT value FROM floor_cell WHERE id = :id"), {"id": row}).scalar_one()
        conn.execute(text("UPDATE floor_cell SET value = :v WHERE id = :id"), {"v": 1 - value, "id": row})
        return render_template(template, row=row, value=1 - value, clicks=session["clicks"])

    @app.post("/click")
    def click():
        with engine.begin() as conn:
            return click_row(conn, click_template)

    # The signed-in click: an app of its own under /signed, so that the bare routes above run none of
    # Flask-Login's and Flask-WTF's hooks.
    signed = Flask(__name__)
    signed.secret_key = app.secret_key
    signed_template = signed.jinja_env.from_string(TEMPLATE)
    logins = LoginManager(signed)
    CSRFProtect(signed)

    @logins.user_loader
    def signed_in(user_id: str):  # the first statement of the click's transaction (g.conn)
        found = g.conn.execute(text("SELECT id FROM floor_login WHERE id = :id AND session_key = :key"),
                               {"id": int(user_id), "key": session.get("key", "")}).first()
        return Parent(found.id) if found else None

    @signed.get("/login")
    def login():
        user = request.args.get("user", 0, type=int) % ROWS
        login_user(Parent(user))
        session["key"] = f"key-{user}"
        return generate_csrf()

    @signed.post("/click")
    def signed_click():
        with engine.begin() as conn:
            g.conn = conn
            if not current_user.is_authenticated:
                abort(401)
            return click_row(conn, signed_template)

    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/signed": signed})
    padding = {}

    @app.get("/page")
    def page():
        count = min(request.args.get("cells", PAGE_CELLS, type=int), ROWS)
        size = min(request.args.get("bytes", PAGE_BYTES, type=int), 1_000_000)
        visits = session.get("visits", 0)  # read, as a page reads who is logged in; not written
        with engine.connect() as conn:
            values = conn.execute(text("SELECT id, value FROM floor_cell WHERE id < :n ORDER BY id"), {"n": count}).all()
        rows = []
        for start in range(0, len(values), len(UNITS)):
            day = f"2027-07-{start // len(UNITS) + 1:02d}"
            rows.append((day, [(f"cell-{day}-{unit}", f"cell cell--{'selected' if value else 'available'}",
                                f"{day}.{row_id}", "Choisi" if value else "Libre",
                                f"jour {day}, {unit} : {'Sélectionné' if value else 'Disponible'} ({visits})")
                               for unit, (row_id, value) in zip(UNITS, values[start:start + len(UNITS)])]))
        if (count, size) not in padding:  # the static rest of a page (its layout), as text written once
            bare = render_template(page_template, rows=rows, units=UNITS, target="/cellule", padding="")
            padding[count, size] = Markup("x" * max(size - len(bare.encode()), 0))
        return render_template(page_template, rows=rows, units=UNITS, target="/cellule", padding=padding[count, size])

    return app
