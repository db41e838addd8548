"""Rate limits every app process sees: counters in the database, one fixed window per key.

Several gunicorn processes or servers share one PostgreSQL, so a limit counted here holds across
all of them (a per-process memory would let a client multiply its quota by the number of processes).
Each hit is one atomic upsert, committed at once: it counts even when the request then fails.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import case, delete
from sqlmodel import Session

from db import get_db, upsert_insert
from models import RateCounter, utcnow
from services.formatting import count_words


def parse(rule: str) -> tuple[int, timedelta]:
    """'10/3600' (ten per hour) as (10, one hour)."""
    count, seconds = rule.split("/")
    return int(count), timedelta(seconds=int(seconds))


def hit(db: Session, key: str, rule: str, now: datetime | None = None) -> int:
    """Count one request for ``key`` and commit; the seconds to wait if it is over the limit, else 0."""
    limit, window = parse(rule)
    now = now or utcnow()
    key = key[:200]
    expired = RateCounter.window_start <= now - window
    statement = upsert_insert(db)(RateCounter).values(key=key, window_start=now, count=1)
    statement = statement.on_conflict_do_update(
        index_elements=["key"],
        set_={"count": case((expired, 1), else_=RateCounter.count + 1),
              "window_start": case((expired, now), else_=RateCounter.window_start)},
    ).returning(RateCounter.count, RateCounter.window_start)
    count, start = db.execute(statement).one()
    if count == 1 and random.random() < 0.01:  # now and then, forget the counters nobody uses
        db.execute(delete(RateCounter).where(RateCounter.window_start < now - timedelta(days=1)))
    db.commit()
    return 0 if count <= limit else _seconds_left(start, window, now)


def waiting(db: Session, key: str, rule: str, now: datetime | None = None) -> int:
    """The seconds to wait if ``key`` has used up its quota, else 0; counts nothing (one read)."""
    limit, window = parse(rule)
    now = now or utcnow()
    counter = db.get(RateCounter, key[:200])
    if counter is None or counter.count < limit:
        return 0
    return _seconds_left(counter.window_start, window, now)


def _seconds_left(start: datetime, window: timedelta, now: datetime) -> int:
    """The whole seconds, at least one, until the window begun at ``start`` ends; 0 once it has."""
    if start.tzinfo is None:  # SQLite gives the time back without its zone
        start = start.replace(tzinfo=now.tzinfo)
    if start <= now - window:
        return 0
    return max(int((start + window - now).total_seconds()) + 1, 1)


def _rule(name: str) -> str | None:
    return current_app.config.get(f"RATE_LIMIT_{name.upper()}")


def blocked(name: str, key: str) -> int:
    """Under the setting ``RATE_LIMIT_<NAME>``: the seconds ``key`` must wait before it is counted again
    (its quota is used up), else 0. Reads only: ``check`` counts."""
    rule = _rule(name)
    return waiting(get_db(), f"{name}:{key}", rule) if rule else 0


def check(name: str, key: str) -> int:
    """Apply the setting ``RATE_LIMIT_<NAME>`` to ``key``; 0 when allowed (or when limits are off).

    Counted in the request's own session and committed at once (on SQLite a second connection
    could not write while the request holds the write lock): call it before the view writes.
    """
    rule = _rule(name)
    return hit(get_db(), f"{name}:{key}", rule) if rule else 0


def wait_words(seconds: int) -> str:
    """How long to wait, said to the person: « 40 secondes », « 3 minutes »."""
    if seconds < 60:
        return count_words(seconds, "seconde")
    return count_words((seconds + 59) // 60, "minute")
