"""Benchmark (not a test): the registration-opening morning.

Builds a town (FAMILIES families, 1 or 2 children each; an accueil de loisirs with 5 units over a
6-week summer period, capacities that run out, and a périscolaire with 3 units over the school term;
prices per QF bracket), serves it with gunicorn (WORKERS processes) and drives it from this separate
process over loopback:

1. /healthz throughput and latency (the ceiling of the server itself);
2. login, the family space, the planning page, one cell toggle and the confirmation of a 20-day
   reservation, one family after another: median and 95th-percentile latency, bytes per response;
   then CONCURRENCY logged-in parents repeating each kind of request at once: requests per second;
3. the rush: every family logs in, opens the planning, selects 20 days and confirms, CONCURRENCY at a
   time: confirmations per second, failed requests, and bookings over capacity (checked in the
   database afterwards: must be 0);
4. the billing run of the period's first month (in this process, on the same database), then invoice
   PDFs fetched by logged-in parents through the server, CONCURRENCY at a time: PDFs per second.

Run on PostgreSQL (--pg-url or BENCH_DATABASE_URL, a database whose name ends in _bench; default
ribambelle_bench on the local server) and on the SQLite default with one server
(--sqlite). Prints Markdown tables, also written to bench-results/rush.md, and the figures to
bench-results/rush.json.

    .venv/bin/python -m tests.benchmarks.bench_rush --families 2000 --workers 4
"""
from __future__ import annotations

import argparse
import builtins
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone
from http.cookies import SimpleCookie
from pathlib import Path

from tests.benchmarks.common import bench_database

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "mot-de-passe-du-banc-d-essai"
UNITS = [("accueil-matin", "Accueil du matin"), ("matinee", "Matinée"), ("repas", "Repas"),
         ("apres-midi", "Après-midi"), ("accueil-soir", "Accueil du soir")]
SCHOOL_UNITS = [("matin", "Accueil du matin"), ("cantine", "Restaurant scolaire"), ("soir", "Accueil du soir")]
BRACKETS = [(0, 450), (451, 800), (801, 1200), (1201, None)]


def build_town(url: str, families: int) -> dict:
    """Insert the town in bulk; returns what the load needs (ids, the days on offer)."""
    from argon2 import PasswordHasher
    from sqlalchemy import insert
    from sqlmodel import Session, select

    from app import create_app
    from models import Child, Enrollment, Establishment, Family, Period, PeriodUnit, Price, QfBracket, Unit, User
    from services import migrations

    migrations.upgrade(url)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "OUTBOX_INTERVAL": 0, "BASE_URL": "http://127.0.0.1"})
    engine = app.extensions["ribambelle.engine"]
    now = datetime.now(timezone.utc)
    start = date.today() + timedelta(days=10)  # far enough: every booking is accepted at once
    start -= timedelta(days=start.weekday())
    end = start + timedelta(days=41)
    # the production cost (the app's settings), computed once for every family
    password_hash = PasswordHasher(time_cost=app.config["ARGON2_TIME_COST"], memory_cost=app.config["ARGON2_MEMORY_COST"],
                                   parallelism=1).hash(PASSWORD)
    with Session(engine) as db:
        est = Establishment(name="Accueil de loisirs du banc d'essai")
        db.add(est)
        db.flush()
        children_count = families + families // 2
        # Each unit-day holds a third of the children: the popular days run out.
        units = [Unit(establishment_id=est.id, code=c, label=l, position=i, capacity=max(children_count // 3, 1))
                 for i, (c, l) in enumerate(UNITS)]
        db.add_all(units)
        period = Period(establishment_id=est.id, name="Vacances d'été (banc d'essai)", start_date=start, end_date=end,
                        booking_opens_at=now - timedelta(minutes=1), booking_closes_at=now + timedelta(days=30))
        db.add(period)
        db.flush()
        for unit in units:
            db.add(PeriodUnit(period_id=period.id, unit_id=unit.id, weekdays="01234"))
        school = Establishment(name="Périscolaire du banc d'essai", kind="periscolaire")
        db.add(school)
        db.flush()
        school_units = [Unit(establishment_id=school.id, code=c, label=l, position=i, capacity=children_count)
                        for i, (c, l) in enumerate(SCHOOL_UNITS)]
        db.add_all(school_units)
        term = Period(establishment_id=school.id, name="Périscolaire (banc d'essai)", start_date=start - timedelta(days=60),
                      end_date=start + timedelta(days=120), booking_opens_at=now - timedelta(days=70),
                      booking_closes_at=now + timedelta(days=100))
        db.add(term)
        db.flush()
        for unit in school_units:
            db.add(PeriodUnit(period_id=term.id, unit_id=unit.id, weekdays="0134"))
        for unit in units + school_units:  # the town's prices, per quotient-familial bracket
            for n, (low, high) in enumerate(BRACKETS):
                db.add(Price(unit_id=unit.id, qf_min=low, qf_max=high, amount_cents=150 + 100 * n + 10 * unit.position))
        db.add_all([QfBracket(qf_min=low, qf_max=high) for low, high in BRACKETS])
        db.commit()
        db.execute(insert(Family), [dict(name=f"Famille {i}", created_at=now, qf=(i * 37) % 1600,
                                         qf_valid_until=start + timedelta(days=365)) for i in range(families)])
        family_ids = db.exec(select(Family.id).order_by(Family.id)).all()
        db.execute(insert(User), [dict(email=f"famille{i}@banc.test", password_hash=password_hash, role="parent",
                                       family_id=f, active=True, session_version=1, created_at=now, first_name="",
                                       last_name="") for i, f in enumerate(family_ids)])
        db.execute(insert(Child), [dict(family_id=f, first_name=f"Enfant{k}", last_name=f"F{f}",
                                        birth_date=date(2018, 1, 1), created_at=now)
                                   for i, f in enumerate(family_ids) for k in range(1 + (i % 2 == 0))])
        children = db.exec(select(Child.id, Child.family_id).order_by(Child.id)).all()
        db.execute(insert(Enrollment), [dict(child_id=c, establishment_id=e, created_at=now)
                                        for c, _ in children for e in (est.id, school.id)])
        db.commit()
        first_child = {}
        for c, f in children:
            first_child.setdefault(f, c)
        unit_ids = [u.id for u in units]
        period_id = period.id
    engine.dispose()
    days = [start + timedelta(days=i) for i in range(42) if (start + timedelta(days=i)).weekday() < 5]
    return {"period": period_id, "units": unit_ids, "days": [d.isoformat() for d in days],
            "families": [(i, first_child[f]) for i, f in enumerate(family_ids)], "children": len(children),
            "capacity": max(children_count // 3, 1)}


class Client:
    """One parent's browser: keep-alive connection, cookies, CSRF token."""

    def __init__(self, port: int, timeout: float = 30, address: str = "10.0.0.1"):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.cookies: dict[str, str] = {}
        self.token = ""
        self.address = address  # the parent's own address, as a reverse proxy would forward it

    def request(self, method, path, data=None, headers=None):
        body = urllib.parse.urlencode(data, doseq=True) if data is not None else None
        h = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()), "X-Forwarded-For": self.address}
        if body is not None:
            h["Content-Type"] = "application/x-www-form-urlencoded"
        if self.token:
            h["X-CSRFToken"] = self.token
        h.update(headers or {})
        started = time.perf_counter()
        try:
            self.conn.request(method, path, body=body, headers=h)
            response = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # gunicorn closes a keep-alive connection idle for 2 s; a browser opens a new one and sends again
            self.conn.close()
            self.conn.connect()
            started = time.perf_counter()
            self.conn.request(method, path, body=body, headers=h)
            response = self.conn.getresponse()
        content = response.read()
        elapsed = time.perf_counter() - started
        for header in response.headers.get_all("Set-Cookie") or []:
            cookie = SimpleCookie(header)
            for key, morsel in cookie.items():
                self.cookies[key] = morsel.value
        if response.status >= 400:
            raise RuntimeError(f"{method} {path}: HTTP {response.status}")
        return content, elapsed

    def login(self, index: int):
        page, _ = self.request("GET", "/")
        self.token = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1).decode()
        return self.request("POST", "/", {"csrf_token": self.token, "email": f"famille{index}@banc.test",
                                          "password": PASSWORD})


def journey(port: int, town: dict, index: int, child: int, timings: dict | None = None) -> bool:
    """Log in, open the family space and the planning, select 20 days (4 units x 5 days), confirm."""
    client = Client(port, address=f"10.{index // 65536 % 256}.{index // 256 % 256}.{index % 256}")

    def timed(name, *args, **kwargs):
        content, elapsed = client.request(*args, **kwargs)
        if timings is not None:
            timings.setdefault(name, []).append((elapsed, len(content)))
        return content

    content, elapsed = client.login(index)
    if timings is not None:
        timings.setdefault("login (POST)", []).append((elapsed, len(content)))
    home = timed("family space", "GET", "/")
    client.token = re.search(rb'"X-CSRFToken": "([^"]+)"', home).group(1).decode()  # the session was renewed
    base = f"/reservations/planning/{child}/{town['period']}"
    month = town["days"][0][:7]
    timed("planning page", "GET", f"{base}?mois={month}")
    days = town["days"][(index * 3) % 20: (index * 3) % 20 + 5]
    for n, day in enumerate(days):
        for unit in town["units"][:4]:
            name = "cell toggle (htmx)" if n == 0 and unit == town["units"][0] else "other toggles"
            timed(name, "POST", f"{base}/cellule", {"cellule": f"{day}.{unit}", "mois": day[:7]},
                  {"HX-Request": "true"})
    recap = timed("recap page", "GET", f"{base}/recapitulatif")
    revision = re.search(rb'name="revision" value="(\d+)"', recap).group(1).decode()
    timed("confirmation (20 days)", "POST", f"{base}/confirmer", {"csrf_token": client.token, "revision": revision})
    client.conn.close()
    return True


def serve(url: str, workers: int, port: int, log: Path):
    # One reverse proxy in front (as in deploy/nginx.conf): each parent comes from its own address, so the
    # login rate limit per address is counted (and costs its database upsert) but never trips.
    env = dict(os.environ, DATABASE_URL=url, FLASK_SECRET_KEY="bench-secret", FLASK_OUTBOX_INTERVAL="0",
               FLASK_PROXY_COUNT="1", FLASK_BASE_URL="http://127.0.0.1")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
         "--threads", "4", "--backlog", "2048", "app:create_app()"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    for _ in range(200):
        try:
            Client(port, 1).request("GET", "/healthz")
            return process
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not start")


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def healthz_load(port: int, requests: int, concurrency: int) -> dict:
    latencies, lock = [], threading.Lock()

    def worker(n):
        client = Client(port)
        local = [client.request("GET", "/healthz")[1] for _ in range(n)]
        with lock:
            latencies.extend(local)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(worker, [requests // concurrency] * concurrency))
    elapsed = time.perf_counter() - started
    return {"requests_per_s": len(latencies) / elapsed, "median_ms": statistics.median(latencies) * 1000,
            "p95_ms": percentile(latencies, 95) * 1000}


def endpoint_load(port: int, town: dict, families: list, seconds: float) -> dict:
    """Each of ``families`` logged in on its own connection, all hammering one kind of request at once
    for ``seconds``: requests per second and latencies under load, per kind (login, family space,
    planning page, cell toggle). Their toggles select and deselect one cell: nothing is confirmed."""
    clients = []
    for index, child in families:
        client = Client(port, address=f"10.250.{index // 256 % 256}.{index % 256}")
        client.login(index)
        home, _ = client.request("GET", "/")
        client.token = re.search(rb'"X-CSRFToken": "([^"]+)"', home).group(1).decode()
        clients.append((client, index, child))
    day, unit = town["days"][-1], town["units"][0]  # a day the rush journeys never book
    logins = iter(range(10**9))

    def fresh_login(client, index):
        """A new visitor each time, from a new address (one address is limited to 60 logins in 5 minutes)."""
        client.cookies.clear()
        client.token = ""
        n = next(logins)
        client.address = f"10.{100 + n // 65536 % 100}.{n // 256 % 256}.{n % 256}"
        return client.login(index)

    month = town["days"][0][:7]
    kinds = {
        "login (POST)": lambda c, i, ch: fresh_login(c, i),
        "family space": lambda c, i, ch: c.request("GET", "/"),
        "planning page": lambda c, i, ch: c.request("GET", f"/reservations/planning/{ch}/{town['period']}?mois={month}"),
        "cell toggle (htmx)": lambda c, i, ch: c.request(
            "POST", f"/reservations/planning/{ch}/{town['period']}/cellule", {"cellule": f"{day}.{unit}", "mois": day[:7]},
            {"HX-Request": "true"}),
    }
    results = {}
    for name, call in kinds.items():
        latencies, errors, lock = [], [], threading.Lock()
        deadline = time.perf_counter() + seconds

        def worker(args, call=call, deadline=deadline, lock=lock, latencies=latencies, errors=errors):
            client, index, child = args
            while time.perf_counter() < deadline:
                try:
                    _, elapsed = call(client, index, child)
                    with lock:
                        latencies.append(elapsed)
                except Exception as exc:  # counted, never hidden
                    with lock:
                        errors.append(f"{type(exc).__name__}: {exc}")
                    return

        started = time.perf_counter()
        with ThreadPoolExecutor(len(clients)) as pool:
            list(pool.map(worker, clients))
        elapsed = time.perf_counter() - started
        if name == "login (POST)":  # the sessions were renewed: take the new CSRF tokens
            for client, _, _ in clients:
                home, _ = client.request("GET", "/")
                client.token = re.search(rb'"X-CSRFToken": "([^"]+)"', home).group(1).decode()
        results[name] = {"requests_per_s": len(latencies) / elapsed,
                         "median_ms": statistics.median(latencies) * 1000 if latencies else 0,
                         "p95_ms": percentile(latencies, 95) * 1000 if latencies else 0, "errors": len(errors),
                         "first_errors": errors[:3]}
    for client, _, _ in clients:
        client.conn.close()
    return results


def rush(port: int, town: dict, concurrency: int) -> dict:
    errors, lock = [], threading.Lock()

    def one(pair):
        index, child = pair
        try:
            journey(port, town, index, child)
        except Exception as exc:  # counted, never hidden
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}")

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, town["families"]))
    elapsed = time.perf_counter() - started
    return {"families": len(town["families"]), "seconds": elapsed, "errors": len(errors),
            "confirmations_per_s": (len(town["families"]) - len(errors)) / elapsed, "first_errors": errors[:5]}


def check_database(url: str) -> dict:
    from sqlalchemy import create_engine
    from sqlmodel import Session, func, select

    from models import Booking, DaySlot
    from services import planning

    engine = create_engine(url)
    with Session(engine) as db:
        over = planning.overbooked(db)
        statuses = dict(db.exec(select(Booking.status, func.count()).group_by(Booking.status)).all())
        full = db.exec(select(func.count()).select_from(DaySlot)).one()
    engine.dispose()
    return {"bookings_over_capacity": len(over), "bookings": statuses, "unit_days_touched": full}


def billing_and_pdfs(url: str, port: int, town: dict, concurrency: int, pdfs: int) -> dict:
    """The month's billing run (in this process, mails to the outbox), then invoice PDFs through the server."""
    from sqlmodel import Session, select

    from app import create_app
    from models import Invoice, User
    from services import billing

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "OUTBOX_INTERVAL": 0, "BASE_URL": "http://127.0.0.1"})
    engine = app.extensions["ribambelle.engine"]
    months = [date.fromisoformat(d).replace(day=1) for d in town["days"][:20]]  # the days the journeys book
    month = max(set(months), key=months.count)
    started = time.perf_counter()
    with app.app_context():
        report = billing.run(engine, month, date.today())
    billing_s = time.perf_counter() - started
    with Session(engine) as db:
        rows = db.exec(select(User.email, Invoice.id).join(Invoice, Invoice.family_id == User.family_id)
                       .where(Invoice.month == month).order_by(Invoice.id).limit(concurrency)).all()
    engine.dispose()
    latencies, sizes, errors, lock = [], [], [], threading.Lock()

    def parent(email_invoice):
        email, invoice_id = email_invoice
        client = Client(port, address=f"10.200.{invoice_id // 256 % 256}.{invoice_id % 256}")
        try:
            client.login(int(re.search(r"famille(\d+)@", email).group(1)))
            for _ in range(max(pdfs // max(len(rows), 1), 1)):
                content, elapsed = client.request("GET", f"/factures/{invoice_id}.pdf")
                assert content.startswith(b"%PDF")
                with lock:
                    latencies.append(elapsed)
                    sizes.append(len(content))
        except Exception as exc:  # counted, never hidden
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}")

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(parent, rows))
    elapsed = time.perf_counter() - started
    return {"month": month.isoformat(), "billing_seconds": billing_s, "invoices": len(report.invoices),
            "invoice_lines": report.lines, "missing_prices": sorted(report.missing_prices), "pdfs": len(latencies),
            "pdfs_per_s": len(latencies) / elapsed if elapsed else 0,
            "pdf_median_ms": statistics.median(latencies) * 1000 if latencies else 0,
            "pdf_p95_ms": percentile(latencies, 95) * 1000 if latencies else 0,
            "pdf_bytes": int(statistics.median(sizes)) if sizes else 0, "pdf_errors": len(errors),
            "first_errors": errors[:3]}


def run(label: str, url: str, families: int, workers: int, concurrency: int, sample: int) -> dict:
    print(f"\n## {label}: building {families} families…", file=sys.stderr)
    town = build_town(url, families)
    port = int(os.environ.get("BENCH_PORT", "8765"))
    log = ROOT / "bench-results" / f"gunicorn-{label}.log"
    log.parent.mkdir(exist_ok=True)
    server = serve(url, workers, port, log)
    try:
        health = healthz_load(port, 4000, concurrency)
        loaders, town["families"] = town["families"][-concurrency:], town["families"][:-concurrency]
        under_load = endpoint_load(port, town, loaders, seconds=8)
        timings: dict = {}
        for index, child in town["families"][:sample]:
            journey(port, town, index, child, timings)
        town["families"] = town["families"][sample:]
        rushed = rush(port, town, concurrency)
        invoices = billing_and_pdfs(url, port, town, concurrency, pdfs=max(concurrency * 4, 40))
    finally:
        server.terminate()
        server.wait(30)
    endpoints = {name: {"median_ms": statistics.median(t for t, _ in v) * 1000,
                        "p95_ms": percentile([t for t, _ in v], 95) * 1000,
                        "bytes": int(statistics.median(b for _, b in v))} for name, v in timings.items()}
    return {"label": label, "database": url.split(":")[0], "cores": os.cpu_count(), "workers": workers, "sample": sample,
            "concurrency": concurrency, "families": families, "children": town["children"],
            "capacity_per_unit_day": town["capacity"], "healthz": health, "endpoints": endpoints,
            "under_load": under_load,
            "rush": rushed, "database_check": check_database(url), "billing": invoices}


def report(result: dict, out) -> None:
    def print(*args, **kwargs):  # to the terminal and to bench-results/rush.md
        builtins.print(*args, **kwargs)
        builtins.print(*args, **kwargs, file=out)

    print(f"\n### {result['label']} — {result['cores']} cores, {result['database']}, gunicorn {result['workers']} "
          f"worker(s) x 4 threads, {result['concurrency']} parents at once, {result['families']} families, "
          f"{result['children']} children, {result['capacity_per_unit_day']} places per unit and day\n")
    h = result["healthz"]
    print(f"One parent after another ({result['sample']} journeys), then {result['concurrency']} parents at once "
          "repeating one kind of request for 8 seconds:\n")
    print("| request | bytes | median ms | p95 ms | under load: req/s | median ms | p95 ms | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| /healthz | 16 | | | {h['requests_per_s']:.0f} | {h['median_ms']:.1f} | {h['p95_ms']:.1f} | 0 |")
    for name, e in result["endpoints"].items():
        u = result["under_load"].get(name)
        loaded = (f"{u['requests_per_s']:.0f} | {u['median_ms']:.1f} | {u['p95_ms']:.1f} | {u['errors']}" if u
                  else "see the rush | | |")
        print(f"| {name} | {e['bytes']} | {e['median_ms']:.1f} | {e['p95_ms']:.1f} | {loaded} |")
    for name, u in result["under_load"].items():
        for error in u["first_errors"]:
            print(f"  error ({name} under load): {error}")
    r, d = result["rush"], result["database_check"]
    print(f"\nRush: {r['families']} families in {r['seconds']:.1f} s — {r['confirmations_per_s']:.1f} confirmations/s, "
          f"{r['errors']} failed journeys, {d['bookings_over_capacity']} bookings over capacity; bookings: {d['bookings']}")
    for error in r["first_errors"]:
        print(f"  error: {error}")
    b = result["billing"]
    print(f"\nBilling of {b['month'][:7]}: {b['invoices']} invoices, {b['invoice_lines']} lines in {b['billing_seconds']:.1f} s"
          + (f" (missing prices: {', '.join(b['missing_prices'])})" if b["missing_prices"] else "")
          + f"; invoice PDFs through the server: {b['pdfs_per_s']:.1f} per second, median {b['pdf_median_ms']:.0f} ms, "
          f"p95 {b['pdf_p95_ms']:.0f} ms, {b['pdf_bytes']} bytes, {b['pdf_errors']} errors")
    for error in b["first_errors"]:
        print(f"  error: {error}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--sample", type=int, default=30, help="families timed one after another")
    parser.add_argument("--sqlite", action="store_true", help="also the same rush on SQLite with one server")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_DATABASE_URL",
                                                           "postgresql+psycopg://postgres@127.0.0.1:5432/ribambelle_bench"),
                        help="a PostgreSQL database whose name ends in _bench (emptied)")
    args = parser.parse_args()
    results = []
    url = bench_database("postgresql", args.pg_url, Path(tempfile.mkdtemp()))
    (ROOT / "bench-results").mkdir(exist_ok=True)
    with open(ROOT / "bench-results" / "rush.md", "w") as markdown:
        markdown.write(f"# Registration-opening rush — {date.today().isoformat()}, {os.cpu_count()} cores\n")
        results.append(run("postgresql", url, args.families, args.workers, args.concurrency, args.sample))
        report(results[-1], markdown)
        if args.sqlite:
            sqlite_url = f"sqlite:///{tempfile.mkdtemp()}/rush.sqlite"
            results.append(run("sqlite", sqlite_url, args.families, 1, args.concurrency, args.sample))
            report(results[-1], markdown)
    out = ROOT / "bench-results" / "rush.json"
    out.write_text(json.dumps(results, indent=1, default=str))
    print(f"\nFigures written to {out.relative_to(ROOT)} and bench-results/rush.md")


if __name__ == "__main__":
    main()
