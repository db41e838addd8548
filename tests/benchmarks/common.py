"""What the benchmarks share: their own database (never production's), the demo parent's session, the machine."""
from __future__ import annotations

import http.client
import os
import platform
import re
import socket
import time
import urllib.parse
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import select

from app import create_app
from db import get_db
from models import Child, Establishment, Period, Unit, utcnow
from services import demo_data, migrations, planning

ROOT = Path(__file__).resolve().parents[2]
BENCH_SETTINGS = {"SECRET_KEY": "bench-secret", "OUTBOX_INTERVAL": 0, "BASE_URL": "http://127.0.0.1"}


class NotABenchDatabase(SystemExit):
    pass


def bench_database(kind: str, pg_url: str, work: Path) -> str:
    """A migrated, empty database of the benchmark's own: a SQLite file in ``work``, or the PostgreSQL
    database ``pg_url`` names, which must end in ``_bench`` (created if missing, then emptied).

    Refuses any other name: a benchmark never empties what ``DATABASE_URL`` (production's variable) names.
    """
    if kind == "sqlite":
        url = f"sqlite:///{work / 'bench.sqlite'}"
    else:
        url = pg_url
        name = make_url(pg_url).database or ""
        if not name.endswith("_bench"):
            raise NotABenchDatabase(f"Refusé : la base « {name} » ne finit pas par _bench ; un banc d'essai "
                                    "vide sa base et ne touche qu'à une base à lui.")
        admin = create_engine(make_url(pg_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    migrations.upgrade(url)
    return url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, seconds: float = 20) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answers on port {port}")


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cores": os.cpu_count(), "cpu": cpu, "python": platform.python_version()}


@dataclass
class Session:
    """A logged-in parent: the cookie header and the CSRF token htmx sends."""

    cookie: str
    csrf: str

    def fetch(self, port: int, method: str, path: str, headers: dict, body: str = "") -> bytes:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request(method, path, body=body or None, headers=headers)
        response = conn.getresponse()
        content = response.read()
        conn.close()
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: HTTP {response.status}")
        return content


@dataclass
class BenchClient:
    email: str
    password: str

    @classmethod
    def demo(cls, url: str) -> BenchClient:
        """Seed the demo town on ``url``; the client of its first parent."""
        app = create_app({**BENCH_SETTINGS, "DATABASE_URL": url})
        with app.app_context():
            demo_data.seed(get_db(), app.extensions["ribambelle.hasher"])
        app.extensions["ribambelle.engine"].dispose()
        return cls("parent@demo.test", demo_data.DEMO_ACCOUNTS["parent@demo.test"])

    def login(self, port: int) -> Session:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/")
        response = conn.getresponse()
        page = response.read().decode()
        cookies = {k: m.value for h in response.headers.get_all("Set-Cookie") or [] for k, m in SimpleCookie(h).items()}
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        body = urllib.parse.urlencode({"csrf_token": token, "email": self.email, "password": self.password})
        conn.request("POST", "/", body=body, headers={"Content-Type": "application/x-www-form-urlencoded",
                                                      "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())})
        response = conn.getresponse()
        response.read()
        if response.status != 302:
            raise RuntimeError(f"login refused: HTTP {response.status}")
        for header in response.headers.get_all("Set-Cookie") or []:
            cookies.update({k: m.value for k, m in SimpleCookie(header).items()})
        cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
        conn.request("GET", "/compte/", headers={"Cookie": cookie})
        response = conn.getresponse()
        home = response.read().decode()
        conn.close()
        for header in response.headers.get_all("Set-Cookie") or []:  # the session now holds the CSRF secret
            cookies.update({k: m.value for k, m in SimpleCookie(header).items()})
        cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
        return Session(cookie, re.search(r'"X-CSRFToken": "([^"]+)"', home).group(1))


def demo_cell(url: str) -> dict:
    """Léa's lunch on the first day it is available in the second month of the demo period: the cell
    the benchmarks click, and the paths of its planning."""
    app = create_app({**BENCH_SETTINGS, "DATABASE_URL": url})
    with app.app_context():
        db = get_db()
        lea = db.exec(select(Child).where(Child.first_name == "Léa")).one()
        est = db.exec(select(Establishment).where(Establishment.name == "Accueil de loisirs Les Lutins")).one()
        period = db.exec(select(Period).where(Period.establishment_id == est.id)).one()
        month = planning.period_months(period)[1]
        plan = planning.load_planning(db, lea, period, planning.month_days(period, month), utcnow())
        repas = db.exec(select(Unit).where(Unit.establishment_id == est.id, Unit.code == "repas")).one()
        day = next(d for d in plan.days if plan.cell(repas, d).state == "available")
        cell = {"day": day.isoformat(), "unit_id": repas.id, "month": f"{month:%Y-%m}",
                "cells": len(plan.days) * len(plan.units),
                "planning_path": f"/reservations/planning/{lea.id}/{period.id}?mois={month:%Y-%m}",
                "toggle_path": f"/reservations/planning/{lea.id}/{period.id}/cellule"}
    app.extensions["ribambelle.engine"].dispose()
    return cell
