"""The stack's floor: what a click costs at the least on this machine, the limit the portal is measured against.

A bare Flask app served by the same gunicorn as the portal, on the same database engine settings
(``db.make_engine``): a signed session cookie read and written, one SELECT and one UPDATE of a row of
its own and their commit (a click is a durable write), a 300-byte template. Nothing else: no login
check, no CSRF, no ORM. ``POST /click?row=N`` is the click; ``GET /healthz`` answers as the portal's.

    FLOOR_DATABASE_URL=sqlite:////tmp/floor.sqlite gunicorn 'tests.benchmarks.floor:create_app()'
"""
from __future__ import annotations

import os

from flask import Flask, render_template_string, request, session
from sqlalchemy import text

from db import make_engine

ROWS = 1000
TEMPLATE = """<td id="cell-{{ row }}" class="cell cell--selected"><button type="button" aria-pressed="true">
<img src="/static/icons/selected.svg" alt="" width="16" height="16"> <span>Sélectionné ({{ value }})</span>
</button></td><p id="counter" hx-swap-oob="true"><strong>{{ clicks }}</strong> clics dans cette session</p>"""


def prepare(url: str) -> None:
    """The floor's own table: ROWS rows, one per parent clicking."""
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS floor_cell"))
        conn.execute(text("CREATE TABLE floor_cell (id INTEGER PRIMARY KEY, value INTEGER NOT NULL)"))
        conn.execute(text("INSERT INTO floor_cell (id, value) VALUES (:id, 0)"), [{"id": i} for i in range(ROWS)])
    engine.dispose()


def create_app() -> Flask:
    app = Flask(__name__)
    app.secret_key = "floor-secret"
    engine = make_engine(os.environ["FLOOR_DATABASE_URL"]).execution_options(sqlite_immediate=True)

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.post("/click")
    def click():
        row = request.args.get("row", 0, type=int) % ROWS
        session["clicks"] = session.get("clicks", 0) + 1
        with engine.begin() as conn:
            value = conn.execute(text("SELECT value FROM floor_cell WHERE id = :id"), {"id": row}).scalar_one()
            conn.execute(text("UPDATE floor_cell SET value = :v WHERE id = :id"), {"v": 1 - value, "id": row})
        return render_template_string(TEMPLATE, row=row, value=1 - value, clicks=session["clicks"])

    return app
