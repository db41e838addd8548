"""Benchmark (not a test): the monthly billing run for a town, and invoice PDFs.

Builds a town of FAMILIES families (1 or 2 children each) with a month of accepted bookings on two
units, runs the billing for that month, and renders invoice PDFs. Prints the figures.

    .venv/bin/python -m tests.benchmarks.bench_billing --families 2000
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from db import get_db


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", type=int, default=2000)
    parser.add_argument("--pdfs", type=int, default=30)
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_DATABASE_URL", ""),
                        help="a PostgreSQL database whose name ends in _bench (emptied); default: a SQLite file")
    args = parser.parse_args()

    from sqlalchemy import insert
    from sqlmodel import Session, select

    from app import create_app
    from models import (
        Booking,
        Child,
        Enrollment,
        Establishment,
        Family,
        Invoice,
        Period,
        PeriodUnit,
        Price,
        Reservation,
        ReservationLine,
        Unit,
        User,
    )
    from services import billing
    from tests.benchmarks.common import bench_database

    url = bench_database("postgresql" if args.pg_url else "sqlite", args.pg_url, Path(tempfile.mkdtemp()))
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "OUTBOX_INTERVAL": 0, "BASE_URL": "http://127.0.0.1"})
    engine = app.extensions["ribambelle.engine"]
    month = date(2027, 7, 1)
    days = [month + timedelta(days=i) for i in range(31) if (month + timedelta(days=i)).weekday() < 5]
    now = datetime(2027, 6, 1, tzinfo=timezone.utc)

    started = time.perf_counter()
    with Session(engine) as db:
        est = Establishment(name="Accueil de loisirs du banc d'essai")
        db.add(est)
        db.flush()
        units = [Unit(establishment_id=est.id, code=c, label=l, position=i, capacity=100000)
                 for i, (c, l) in enumerate([("matinee", "Matinée"), ("repas", "Repas")])]
        db.add_all(units)
        db.flush()
        period = Period(establishment_id=est.id, name="Été", start_date=month, end_date=date(2027, 8, 31),
                        booking_opens_at=now, booking_closes_at=now + timedelta(days=90))
        db.add(period)
        db.flush()
        for unit in units:
            db.add(PeriodUnit(period_id=period.id, unit_id=unit.id, weekdays="01234"))
            for low, high, cents in ((0, 450, 350), (451, 800, 450), (801, 1200, 550), (1201, None, 650)):
                db.add(Price(period_id=period.id, unit_id=unit.id, qf_min=low, qf_max=high, amount_cents=cents))
        parent = User(email="bench@demo.test", password_hash="x")
        db.add(parent)
        db.commit()
        family_rows = [dict(name=f"Famille {i}", qf=(i * 37) % 1500 if i % 5 else None,
                            qf_valid_until=date(2027, 12, 31), created_at=now) for i in range(args.families)]
        db.execute(insert(Family), family_rows)
        family_ids = db.exec(select(Family.id).order_by(Family.id)).all()
        child_rows = [dict(family_id=f, first_name=f"Enfant{k}", last_name=f"F{f}", birth_date=date(2018, 1, 1),
                           created_at=now) for f in family_ids for k in range(1 + f % 2)]
        db.execute(insert(Child), child_rows)
        children = db.exec(select(Child.id, Child.family_id)).all()
        db.execute(insert(Enrollment), [dict(child_id=c, establishment_id=est.id, created_at=now) for c, _ in children])
        db.execute(insert(Reservation), [dict(number=f"R-2027-{c:06d}", family_id=f, child_id=c, period_id=period.id,
                                              kind="booking", status="accepted", confirm_key=f"bench-{c}",
                                              created_by_id=parent.id, created_at=now, absence=False)
                                         for c, f in children])
        reservations = dict(db.exec(select(Reservation.child_id, Reservation.id)).all())
        line_rows = [dict(reservation_id=reservations[c], unit_id=u.id, day=d, action="book", outcome="accepted",
                          state="accepted", note="", message="", billable=False, justified=False, justification="")
                     for c, _ in children for d in days[: 10 + c % 12] for u in units]
        db.execute(insert(ReservationLine), line_rows)
        lines = db.exec(select(ReservationLine.id, ReservationLine.reservation_id, ReservationLine.unit_id, ReservationLine.day)).all()
        child_of = {r: c for c, r in reservations.items()}
        family_of = dict(children)
        db.execute(insert(Booking), [dict(child_id=child_of[r], family_id=family_of[child_of[r]], unit_id=u, day=d,
                                          status="accepted", line_id=i, created_at=now) for i, r, u, d in lines])
        db.commit()
    built = time.perf_counter() - started

    started = time.perf_counter()
    report = billing.run(engine, month, date(2027, 8, 2))  # with its mails, as in production and bench_rush
    run_seconds = time.perf_counter() - started
    started = time.perf_counter()
    again = billing.run(engine, month, date(2027, 8, 2))
    rerun_seconds = time.perf_counter() - started

    from blueprints.billing import render_pdf

    timings, stored = [], []  # the first download makes the PDF, the next ones serve it
    with Session(engine) as db:
        invoices = db.exec(select(Invoice).order_by(Invoice.id).limit(args.pdfs)).all()
        pdf_bytes = 0
        for invoice in invoices:
            for times in (timings, stored):
                with app.test_request_context():
                    t = time.perf_counter()
                    response = render_pdf(get_db().get(Invoice, invoice.id))
                    times.append(time.perf_counter() - t)
                    pdf_bytes = len(response.data)

    print(f"Ribambelle billing benchmark — {os.cpu_count()} cores, database {url.split(':')[0]}")
    print()
    print("| figure | value |")
    print("|---|---:|")
    print(f"| families / children / bookings | {args.families} / {len(children)} / {len(lines)} |")
    print(f"| town built in | {built:.1f} s |")
    print(f"| billing run ({len(report.invoices)} invoices, {report.lines} lines) | {run_seconds:.1f} s "
          f"({len(report.invoices) / run_seconds:.0f} invoices/s) |")
    print(f"| second run (bills nothing: {len(again.invoices)} invoices) | {rerun_seconds:.2f} s |")
    print(f"| invoice PDF made (first download), median of {len(timings)} | {statistics.median(timings) * 1000:.0f} ms "
          f"({1 / statistics.median(timings):.1f} PDF/s, {pdf_bytes} bytes) |")
    print(f"| invoice PDF stored (next downloads), median of {len(stored)} | {statistics.median(stored) * 1000:.1f} ms "
          f"({1 / statistics.median(stored):.0f} PDF/s) |")


if __name__ == "__main__":
    main()
