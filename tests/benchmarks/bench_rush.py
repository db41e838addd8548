"""Benchmark (not a test): the registration-opening morning, with Locust through nginx.

Builds a town (FAMILIES families, 1 or 2 children each; an accueil de loisirs with 5 units over a
6-week summer period, capacities that run out, and a périscolaire with 3 units over the school term;
prices per QF bracket) and serves it as deploy/ does: gunicorn (WORKERS processes x 4 threads, the
settings of deploy/gunicorn.conf.py) behind nginx with deploy/nginx.conf (HTTPS, gzip). Locust
(tests/benchmarks/locust_parents.py, in its own virtualenv) plays the parents over loopback:

1. /healthz under load: what a request that does nothing costs through the whole stack;
2. USERS parents logged in (logins not timed), all repeating one kind of request at once: family space,
   planning page, cell toggle, a new visitor's login; requests per second as a ratio to /healthz;
3. SAMPLE families one after another (latency alone), then the rush: every other family logs in, opens
   the planning, selects 20 days and confirms, USERS at a time. Every failed request is counted and the
   user goes on with the next family. Every tenth family is behind one school's NAT address, and some of
   those mistype their password once: what the per-address login limit does to them is printed. Bookings
   over capacity are counted in the database afterwards (must be 0);
4. parents at a human pace: PACED (a list of counts) logged-in parents of the town, each tapping a cell
   after a pause of PACE seconds on average (drawn at random: independent people), the counts in turn;
   the click's latency when the server is busy but not a queue, and the taps per second it then serves;
5. a morning below the server's limit: families of their own (set aside before the rush) come in at each
   rate of ARRIVALS a second, each through the journey at a person's pace (a pause drawn at random after
   each page and between taps); once the first are through (ARRIVAL_WARM seconds), ARRIVAL_SECONDS are
   measured: each request's latency, the confirmations per second, the server's cores;
6. the billing run of the booked month (in this process, on the same database, mails to the outbox),
   then USERS parents, logged in beforehand and whose PDF a first download stored, fetching their
   invoice PDF at once: PDFs per second.

Bytes are those nginx sent (its access log: gzip as deployed), not the raw bodies. The cores the load tool
and the server used are printed beside the figures. Run on PostgreSQL (--pg-url or BENCH_DATABASE_URL, a
database whose name ends in _bench; default ribambelle_bench on the local server) and, with --sqlite, on
the SQLite default with one server. Prints Markdown tables, also written to bench-results/rush.md, and the
figures to bench-results/rush.json.

    make bench-rush            # or: .venv/bin/python -m tests.benchmarks.bench_rush --families 2000 --sqlite
"""
from __future__ import annotations

import argparse
import builtins
import json
import os
import re
import resource
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from tests.benchmarks.common import bench_database, free_port
from tests.benchmarks.cpu import tree_cpu_seconds
from tests.nginx import NGINX, nginx_config

ROOT = Path(__file__).resolve().parents[2]
LOCUST = ROOT / ".venv-locust" / "bin" / "python"
PASSWORD = "mot-de-passe-du-banc-d-essai"  # the one of locust_parents.py
UNITS = [("accueil-matin", "Accueil du matin"), ("matinee", "Matinée"), ("repas", "Repas"),
         ("apres-midi", "Après-midi"), ("accueil-soir", "Accueil du soir")]
SCHOOL_UNITS = [("matin", "Accueil du matin"), ("cantine", "Restaurant scolaire"), ("soir", "Accueil du soir")]
BRACKETS = [(0, 450), (451, 800), (801, 1200), (1201, None)]


def build_town(url: str, families: int) -> dict:
    """Insert the town in bulk; returns what the load needs (ids, the days on offer)."""
    from argon2 import PasswordHasher
    from sqlalchemy import func, insert
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
        before = db.exec(select(func.max(Family.id))).one() or 0  # a database may hold others (bench_wrk's demo)
        db.execute(insert(Family), [dict(name=f"Famille {i}", created_at=now, qf=(i * 37) % 1600,
                                         qf_valid_until=start + timedelta(days=365)) for i in range(families)])
        family_ids = db.exec(select(Family.id).where(Family.id > before).order_by(Family.id)).all()
        db.execute(insert(User), [dict(email=f"famille{i}@banc.test", password_hash=password_hash, role="parent",
                                       family_id=f, active=True, session_version=1, created_at=now, first_name="",
                                       last_name="") for i, f in enumerate(family_ids)])
        db.execute(insert(Child), [dict(family_id=f, first_name=f"Enfant{k}", last_name=f"F{f}",
                                        birth_date=date(2018, 1, 1), created_at=now)
                                   for i, f in enumerate(family_ids) for k in range(1 + (i % 2 == 0))])
        children = db.exec(select(Child.id, Child.family_id).where(Child.family_id > before).order_by(Child.id)).all()
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


class Stack:
    """gunicorn behind nginx, as deploy/ sets them up, on 127.0.0.1; stopped by ``stop``."""

    def __init__(self, url: str, workers: int, work: Path):
        if NGINX is None:
            raise SystemExit("nginx manquant : make browser l'installe")
        self.work, port, https, plain = work, free_port(), free_port(), free_port()
        self.url = f"https://127.0.0.1:{https}"
        # The parents' own addresses come in X-Forwarded-For as an outer proxy (a school's NAT, a town's
        # front) writes them; nginx adds its own hop, so the app trusts two.
        env = dict(os.environ, DATABASE_URL=url, FLASK_SECRET_KEY="bench-secret", FLASK_OUTBOX_INTERVAL="0",
                   FLASK_PROXY_COUNT="2", FLASK_BASE_URL=self.url)
        self.gunicorn = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
             "--workers", str(workers), "app:create_app()"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(work / "gunicorn.log", "w"))
        main = nginx_config(work, https, plain, [port])
        site = work / "ribambelle.conf"
        site.write_text(site.read_text().replace("server_name famille.ville.fr;", "server_name 127.0.0.1;"))
        main.write_text(main.read_text().replace("worker_processes 1;", "worker_processes auto;")
                        .replace("worker_connections 256;", "worker_connections 1024;"))
        self.access_log = work / "nginx-access.log"
        self.nginx = subprocess.Popen([NGINX, "-c", str(main)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{self.url}/healthz", timeout=1, context=context)
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("gunicorn or nginx did not start")

    def cpu_seconds(self) -> float:
        """CPU time so far of gunicorn and nginx, their workers included (from /proc)."""
        return tree_cpu_seconds(self.roots())

    def roots(self) -> set[int]:
        return {self.gunicorn.pid, self.nginx.pid}

    def stop(self):
        for process in (self.nginx, self.gunicorn):
            process.terminate()
        for process in (self.nginx, self.gunicorn):
            process.wait(30)


def locust(stack: Stack, scenario: str, town: dict, users: int, **options) -> dict:
    """One Locust run (its own process); its figures, and the cores it and the server used meanwhile."""
    town_file, out = stack.work / "town.json", stack.work / f"locust-{scenario}.json"
    town_file.write_text(json.dumps(town))
    command = [str(LOCUST), str(ROOT / "tests" / "benchmarks" / "locust_parents.py"), "--scenario", scenario,
               "--host", stack.url, "--users", str(users), "--town", str(town_file), "--out", str(out),
               "--server", ",".join(map(str, stack.roots()))]
    for key, value in options.items():
        command += [f"--{key}", str(value)]
    before, server_before, started = resource.getrusage(resource.RUSAGE_CHILDREN), stack.cpu_seconds(), time.monotonic()
    subprocess.run(command, check=True, stderr=open(stack.work / f"locust-{scenario}.log", "a"))
    wall, after = time.monotonic() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    result = json.loads(out.read_text())
    result["load_cores"] = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / wall
    result["server_cores"] = (stack.cpu_seconds() - server_before) / wall
    return result


LOG_LINE = re.compile(r'\[[^\]]+\] "(\S+) (\S+)" (\d+) (\d+) ')
PLANNING = r"/reservations/planning/\d+/\d+"
KINDS = [("GET", "/healthz", "/healthz"), ("GET", "/", "login page"), ("POST", "/", "login (POST)"),
         ("GET", "/compte/", "family space"), ("GET", PLANNING + r"\?mois=.*", "planning page"),
         ("POST", PLANNING + "/cellule", "cell toggle (htmx)"), ("GET", PLANNING + "/recapitulatif", "recap page"),
         ("POST", PLANNING + "/confirmer", "confirmation (20 days)"), ("GET", r"/factures/\d+\.pdf", "invoice PDF")]
KINDS = [(method, re.compile(pattern), name) for method, pattern, name in KINDS]


def wire(access_log: Path) -> dict:
    """From nginx's access log: the median bytes it sent per kind of request, and the answers by status."""
    sizes, statuses = {}, {}
    for line in access_log.read_text().splitlines():
        match = LOG_LINE.search(line)
        if not match:
            continue
        method, uri, status, sent = match.group(1), match.group(2), int(match.group(3)), int(match.group(4))
        statuses[status] = statuses.get(status, 0) + 1
        name = next((n for m, pattern, n in KINDS if m == method and pattern.fullmatch(uri)), None)
        if name == "login (POST)" and status == 200:
            name = "login, mistyped (POST)"
        if name and status < 400:
            sizes.setdefault(name, []).append(sent)
    return {"bytes": {name: int(statistics.median(v)) for name, v in sizes.items()}, "statuses": statuses}


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


def billing(url: str, town: dict) -> tuple[dict, list]:
    """The month's billing run, in this process (mails to the outbox); the families' invoices."""
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
    seconds = time.perf_counter() - started
    with Session(engine) as db:
        rows = db.exec(select(User.email, Invoice.id).join(Invoice, Invoice.family_id == User.family_id)
                       .where(Invoice.month == month).order_by(Invoice.id)).all()
    engine.dispose()
    invoices = [[int(re.search(r"famille(\d+)@", email).group(1)), 0, invoice] for email, invoice in rows]
    return ({"month": month.isoformat(), "seconds": seconds, "invoices": len(report.invoices), "lines": report.lines,
             "missing_prices": sorted(report.missing_prices)}, invoices)


def arrival_families(rates: list[float], warm: float, window: float) -> list[int]:
    """How many families each rate of the arrivals takes: those that come in before and during its window."""
    return [round(rate * (warm + window)) for rate in rates]


def run(label: str, url: str, families: int, workers: int, users: int, sample: int, seconds: float,
        paced: list[int], pace: float, arrivals: list[float], warm: float, window: float, think: float) -> dict:
    print(f"\n## {label}: building {families} families…", file=sys.stderr)
    town = build_town(url, families)
    work = Path(tempfile.mkdtemp(prefix=f"rush-{label}-"))
    stack = Stack(url, workers, work)
    try:
        print(f"## {label}: /healthz, then {users} parents per kind of request…", file=sys.stderr)
        health = locust(stack, "healthz", {}, users, seconds=seconds)
        town["loaders"], town["families"] = [list(f) + [None] for f in town["families"][-users:]], town["families"][:-users]
        coming = arrival_families(arrivals, warm, window)  # the arrivals' own families, untouched by the rush
        newcomers = town["families"][len(town["families"]) - sum(coming):]
        town["families"] = town["families"][:len(town["families"]) - sum(coming)]
        kinds = locust(stack, "kinds", town, users, seconds=seconds)
        print(f"## {label}: {sample} journeys one after another, then the rush…", file=sys.stderr)
        alone = locust(stack, "rush", dict(town, families=town["families"][:sample]), 1)
        rushed = locust(stack, "rush", dict(town, families=town["families"][sample:]), users)
        steps = [n for n in paced if n <= len(town["families"])]
        print(f"## {label}: parents at a human pace, {steps} in turn…", file=sys.stderr)
        at_pace = locust(stack, "paced", dict(town, loaders=[list(f) + [None] for f in town["families"][:max(steps)]]),
                         max(steps), seconds=2 * seconds, steps=",".join(map(str, steps)), pace=pace)
        print(f"## {label}: families coming in at {arrivals} a second, at a person's pace…", file=sys.stderr)
        morning = []
        for rate, count in zip(arrivals, coming):
            morning.append(locust(stack, "arrivals", dict(town, families=newcomers[:count]), 1, rate=rate, pace=pace,
                                  think=think, warm=warm, seconds=window))
            newcomers = newcomers[count:]
        bill, invoices = billing(url, town)
        print(f"## {label}: billing done in {bill['seconds']:.1f} s; invoice PDFs…", file=sys.stderr)
        pdfs = locust(stack, "kinds", dict(town, loaders=invoices[:users]), min(users, len(invoices)), seconds=seconds,
                      kinds="invoice PDF")
    finally:
        stack.stop()
    return {"label": label, "database": url.split(":")[0], "cores": os.cpu_count(), "workers": workers, "users": users,
            "sample": sample, "seconds": seconds, "families": families, "children": town["children"],
            "capacity_per_unit_day": town["capacity"], "healthz": health, "kinds": kinds, "alone": alone,
            "rush": rushed, "paced": at_pace, "arrivals": morning, "pdfs": pdfs, "billing": bill, "wire": wire(stack.access_log),
            "database_check": check_database(url)}


def report(result: dict, out) -> None:
    def print(*args, **kwargs):  # to the terminal and to bench-results/rush.md
        builtins.print(*args, **kwargs)
        builtins.print(*args, **kwargs, file=out)

    users, wire_bytes = result["users"], result["wire"]["bytes"]
    print(f"\n### {result['label']} — {result['cores']} cores, {result['database']}, gunicorn {result['workers']} "
          f"worker(s) x 4 threads behind nginx (HTTPS, gzip), {users} Locust parents at once, {result['families']} "
          f"families, {result['children']} children, {result['capacity_per_unit_day']} places per unit and day\n")
    health = result["healthz"]["figures"]["/healthz"]
    print(f"Alone: {result['sample']} journeys one after another. Under load: {users} logged-in parents repeating one "
          f"kind of request for {result['seconds']:.0f} s (their logins before, untimed). Bytes: what nginx sent.\n")
    print("| request | bytes sent | alone: median ms | p95 ms | under load: req/s | × /healthz | median ms | p95 ms "
          "| failed |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = [("/healthz", None, health)] + [(name, result["alone"]["figures"].get(name), figures.get(name))
                                           for name, figures in result["kinds"]["kinds"].items()]
    rows += [(name, figures, None) for name, figures in result["alone"]["figures"].items()
             if name not in result["kinds"]["kinds"] and name != "errors"]
    rows.append(("invoice PDF", None, result["pdfs"]["kinds"]["invoice PDF"].get("invoice PDF")))
    for name, alone, loaded in rows:
        cells = [name, str(wire_bytes.get(name, "")),
                 f"{alone['median_ms']:.0f}" if alone else "", f"{alone['p95_ms']:.0f}" if alone else ""]
        if loaded:
            cells += [f"{loaded['requests_per_s']:.0f}", f"{loaded['requests_per_s'] / health['requests_per_s']:.3f}",
                      f"{loaded['median_ms']:.0f}", f"{loaded['p95_ms']:.0f}", str(loaded["failures"])]
        else:
            cells += ["", "", "", "", ""]
        print("| " + " | ".join(cells) + " |")
    for name, figures in [("kinds", result["kinds"]["kinds"][k]) for k in result["kinds"]["kinds"]] + \
            [("rush", result["rush"]["figures"]), ("PDFs", result["pdfs"]["kinds"]["invoice PDF"])]:
        for error in figures.get("errors", [])[:3]:
            print(f"  error ({name}): {error['occurrences']} × {error['name']}: {error['error'][:200]}")
    r, d = result["rush"], result["database_check"]
    failed_requests = sum(f["failures"] for n, f in r["figures"].items() if n != "errors")
    toggle = r["figures"].get("cell toggle (htmx)", {})
    print(f"\nRush: {r['families']} families in {r['seconds']:.1f} s — **{r['confirmations_per_s']:.1f} confirmations/s**, "
          f"{r['journeys_failed']} failed journeys, {failed_requests} failed requests, cell toggle p95 "
          f"{toggle.get('p95_ms', 0):.0f} ms; {d['bookings_over_capacity']} bookings over capacity; bookings: {d['bookings']}")
    print(f"Behind one school address: {r['school_families']} families, {r['school_failed']} failed journeys "
          "(some mistyped their password once first); answers by status (nginx): "
          + ", ".join(f"{status}: {count}" for status, count in sorted(result["wire"]["statuses"].items())))
    paced = result["paced"]
    print(f"\nParents at a human pace (each taps a cell after a pause of {paced['pace']:g} s on average, drawn at random; "
          f"{paced['window']:g} s for each count; their logins before, untimed):\n")
    print("| parents tapping | taps/s served | server cores | median ms | p95 ms | max ms | failed |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for step in paced["steps"]:
        tap = step.get("cell toggle (htmx)", {})
        print(f"| {step['parents']} | {tap.get('requests_per_s', 0):.0f} | "
              f"{step['server_cores']:.2f} | {tap.get('median_ms', 0):.0f} | "
              f"{tap.get('p95_ms', 0):.0f} | {tap.get('max_ms', 0):.0f} | {tap.get('failures', 0)} |")
        for error in step.get("errors", [])[:3]:
            print(f"  error (paced, {step['parents']}): {error['occurrences']} × {error['name']}: {error['error'][:200]}")
    morning = result["arrivals"]
    if morning:
        print(f"\nA morning below the limit: families coming in at a given rate, each through the journey at a person's "
              f"pace (pauses of {', '.join(f'{k} {v:g} s' for k, v in morning[0]['pauses'].items())}, between taps {morning[0]['pace']:g} s, "
              f"drawn at random); {morning[0]['window']:g} s measured once the first were through "
              f"({morning[0]['warm']:g} s):\n")
        names = ["login (POST)", "family space", "planning page", "cell toggle (htmx)", "confirmation (20 days)"]
        print("| families a second | confirmations/s | server cores | " + " | ".join(f"{n}: median / p95 ms" for n in names)
              + " | failed |")
        print("|---:|---:|---:|" + "---:|" * len(names) + "---:|")
        for step in morning:
            f = step["figures"]
            failed = sum(v["failures"] for k, v in f.items() if k != "errors")
            print(f"| {step['rate']:g} | {step['confirmations_per_s']:.1f} | {step['window_server_cores']:.2f} | "
                  + " | ".join(f"{f[n]['median_ms']:.0f} / {f[n]['p95_ms']:.0f}" if n in f else "" for n in names)
                  + f" | {failed} |")
            for error in f.get("errors", [])[:3]:
                print(f"  error (arrivals, {step['rate']:g}/s): {error['occurrences']} × {error['name']}: {error['error'][:200]}")
    b, p = result["billing"], result["pdfs"]["kinds"]["invoice PDF"].get("invoice PDF", {})
    print(f"\nBilling of {b['month'][:7]}: {b['invoices']} invoices, {b['lines']} lines in {b['seconds']:.1f} s"
          + (f" (missing prices: {', '.join(b['missing_prices'])})" if b["missing_prices"] else "")
          + f"; invoice PDFs, {result['pdfs']['users']} parents at once (logged in before): "
          f"{p.get('requests_per_s', 0):.0f} per second, median {p.get('median_ms', 0):.0f} ms, p95 {p.get('p95_ms', 0):.0f} ms, "
          f"{p.get('failures', 0)} failed")
    print("\nCores used (of " + str(result["cores"]) + "), load tool / server (gunicorn + nginx): "
          + "; ".join([f"{name} {result[key]['load_cores']:.2f} / {result[key]['server_cores']:.2f}"
                       for name, key in (("/healthz", "healthz"), ("kinds", "kinds"), ("rush", "rush"), ("paced", "paced"),
                                         ("PDFs", "pdfs"))]
                      + [f"arrivals {step['rate']:g}/s {step['load_cores']:.2f} / {step['server_cores']:.2f}"
                         for step in morning]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--users", type=int, default=32, help="Locust parents at once")
    parser.add_argument("--sample", type=int, default=30, help="families timed one after another")
    parser.add_argument("--seconds", type=float, default=8, help="length of each request kind's window")
    parser.add_argument("--paced", default="32,64,128,256", help="parents tapping at a human pace, in turn")
    parser.add_argument("--pace", type=float, default=2.0, help="a paced parent's mean pause between taps, s")
    parser.add_argument("--arrivals", default="1,2,4", help="families coming in per second, in turn ('' for none)")
    parser.add_argument("--arrival-warm", type=float, default=100, help="seconds of arrivals before their window")
    parser.add_argument("--arrival-seconds", type=float, default=30, help="the arrivals' measured window, s")
    parser.add_argument("--think", type=float, default=1.0,
                        help="arrivals: the pauses after each page, as a multiple of a person's (a quick check: 0.01)")
    parser.add_argument("--results", default=str(ROOT / "bench-results"), help="where rush.md and rush.json go")
    parser.add_argument("--sqlite", action="store_true", help="also the same rush on SQLite with one server")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_DATABASE_URL",
                                                           "postgresql+psycopg://postgres@127.0.0.1:5432/ribambelle_bench"),
                        help="a PostgreSQL database whose name ends in _bench (emptied)")
    args = parser.parse_args()
    paced = [int(n) for n in args.paced.split(",")]
    arrivals = [float(r) for r in args.arrivals.split(",") if r]
    coming = sum(arrival_families(arrivals, args.arrival_warm, args.arrival_seconds))
    if coming > (args.families - args.users) // 2:  # the rush keeps at least half of the town
        parser.error(f"{coming} families for the arrivals, of {args.families}: more families or lower rates")
    morning = (arrivals, args.arrival_warm, args.arrival_seconds, args.think)
    if not LOCUST.exists():
        raise SystemExit("Locust manquant : make bench-rush l'installe (.venv-locust)")
    results = []
    url = bench_database("postgresql", args.pg_url, Path(tempfile.mkdtemp()))
    results_dir = Path(args.results)
    results_dir.mkdir(exist_ok=True)
    with open(results_dir / "rush.md", "w") as markdown:
        markdown.write(f"# Registration-opening rush — {date.today().isoformat()}, {os.cpu_count()} cores\n")
        results.append(run("postgresql", url, args.families, args.workers, args.users, args.sample, args.seconds,
                           paced, args.pace, *morning))
        report(results[-1], markdown)
        if args.sqlite:
            sqlite_url = f"sqlite:///{tempfile.mkdtemp()}/rush.sqlite"
            results.append(run("sqlite", sqlite_url, args.families, 1, args.users, args.sample, args.seconds,
                               paced, args.pace, *morning))
            report(results[-1], markdown)
    out = results_dir / "rush.json"
    out.write_text(json.dumps(results, indent=1, default=str))
    print(f"\nFigures written to {out} and {results_dir / 'rush.md'}")


if __name__ == "__main__":
    main()
