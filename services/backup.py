"""`flask backup` and `flask restore`: the SQLite online backup API, or pg_dump / pg_restore.

A backup is verified once written (SQLite: an integrity check of the copy; PostgreSQL: the dump restored
into a scratch database). A restore is all or nothing: the file is checked before anything is replaced,
PostgreSQL's restore runs in one transaction that stops at the first error, and the tool's own message
is shown. It is refused while the portal is running, and the number counters never go back: a
reservation or invoice number already shown to a family is never handed out again.
"""
from __future__ import annotations

import fcntl
import os
import sqlite3
import subprocess
import time
from datetime import datetime
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from db import APPLICATION_NAME


class BackupError(Exception):
    """Why a backup or a restore was refused or failed, in French; nothing was changed."""


def _sqlite_path(url: str) -> str:
    return make_url(url).database


def _libpq_url(url: str, database: str | None = None) -> str:
    """postgresql+psycopg://... as the PostgreSQL tools expect it (postgresql://...)."""
    parsed = make_url(url).set(drivername="postgresql")
    if database:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def default_destination(url: str, folder: Path) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    suffix = "sqlite" if url.startswith("sqlite") else "dump"
    return folder / f"ribambelle-{stamp}.{suffix}"


# --- the portal running -------------------------------------------------------------------------------


def lock_path(url: str) -> Path | None:
    """The file every app process on a SQLite database keeps a shared lock on while it runs."""
    if not url.startswith("sqlite") or _sqlite_path(url) in (None, "", ":memory:"):
        return None
    return Path(_sqlite_path(url) + ".en-service")


def hold_running_lock(url: str):
    """Called by each app process: a shared lock, released when the process ends (however it ends)."""
    path = lock_path(url)
    if path is None:
        return None
    handle = open(path, "a")
    fcntl.flock(handle, fcntl.LOCK_SH)
    return handle


def running_problem(url: str) -> str | None:
    """Why the portal looks in service on this database, in French; None when nothing uses it."""
    if url.startswith("sqlite"):
        path = lock_path(url)
        if path is None or not path.exists():
            return None
        with open(path, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return "le portail est en service sur cette base (un processus la garde ouverte)"
            fcntl.flock(handle, fcntl.LOCK_UN)
        return None
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            for _ in range(10):  # a process that just stopped takes a moment to leave pg_stat_activity
                others = conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                           "AND pid <> pg_backend_pid() AND application_name = :app"),
                                      {"app": APPLICATION_NAME}).scalar_one()
                if not others:
                    return None
                time.sleep(0.3)
    finally:
        engine.dispose()
    return f"le portail est en service sur cette base ({others} connexion(s) ouverte(s))"


# --- backup -------------------------------------------------------------------------------------------


def backup(url: str, destination: Path) -> Path:
    """A consistent copy of the database, taken while the portal keeps running, then verified."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("sqlite"):
        source = sqlite3.connect(_sqlite_path(url))
        target = sqlite3.connect(destination)
        with target:
            source.backup(target)
        target.close()
        source.close()
    else:
        _run(["pg_dump", "--format=custom", "--no-owner", f"--file={destination}", _libpq_url(url)], "pg_dump")
    check(url, destination)
    return destination


def check(url: str, source: Path) -> None:
    """Verify that ``source`` is a whole, readable backup of a Ribambelle database; BackupError if not."""
    if not source.is_file() or source.stat().st_size == 0:
        raise BackupError(f"La sauvegarde {source} est vide ou absente.")
    if url.startswith("sqlite"):
        _check_sqlite(source)
    else:
        _check_postgresql(url, source)


def _check_sqlite(source: Path) -> None:
    try:
        conn = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"La sauvegarde {source} est illisible : {exc}.") from None
    if problems != ["ok"]:
        raise BackupError(f"La sauvegarde {source} est endommagée : {'; '.join(problems[:5])}.")
    if "alembic_version" not in tables or "family" not in tables:
        raise BackupError(f"{source} n'est pas une sauvegarde du portail famille.")


def _check_postgresql(url: str, source: Path) -> None:
    """Restore the dump into a scratch database, in one transaction stopping at the first error."""
    scratch = f"{make_url(url).database}_verif_{os.getpid()}"
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch}"'))
            conn.execute(text(f'CREATE DATABASE "{scratch}"'))
        try:
            _run(["pg_restore", "--no-owner", "--single-transaction", "--exit-on-error",
                  f"--dbname={_libpq_url(url, scratch)}", str(source)], "pg_restore")
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
    finally:
        admin.dispose()


# --- restore ------------------------------------------------------------------------------------------


def restore(url: str, source: Path) -> None:
    """Put a backup back in place of the current data: all or nothing, with the portal stopped."""
    if not source.exists():
        raise BackupError(f"Sauvegarde introuvable : {source}.")
    problem = running_problem(url)
    if problem:
        raise BackupError(f"Restauration refusée : {problem}. Arrêtez le portail (systemctl stop ribambelle) "
                          "puis recommencez.")
    if url.startswith("sqlite"):
        _check_sqlite(source)  # before anything is replaced
    counters = _counters(url)
    if url.startswith("sqlite"):
        backup_db = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        target = sqlite3.connect(_sqlite_path(url))
        try:
            with target:
                backup_db.backup(target)  # one step: the live file is replaced whole, or not at all
        finally:
            target.close()
            backup_db.close()
    else:
        _run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction", "--exit-on-error",
              f"--dbname={_libpq_url(url)}", str(source)], "pg_restore")
    _keep_counters_ahead(url, counters)


def _counters(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return dict(conn.execute(text("SELECT name, value FROM counter")).all())
    except Exception:  # no counter table yet (an empty database): nothing to keep
        return {}
    finally:
        engine.dispose()


def _keep_counters_ahead(url: str, before: dict[str, int]) -> None:
    """Counters at least where they were: numbers given out after the backup stay given out."""
    if not before:
        return
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for name, value in before.items():
                moved = conn.execute(text("UPDATE counter SET value = :v WHERE name = :n AND value < :v"),
                                     {"v": value, "n": name}).rowcount
                if not moved and conn.execute(text("SELECT count(*) FROM counter WHERE name = :n"),
                                              {"n": name}).scalar_one() == 0:
                    conn.execute(text("INSERT INTO counter (name, value) VALUES (:n, :v)"), {"n": name, "v": value})
    finally:
        engine.dispose()


def _run(command: list[str], tool: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        message = (result.stderr or result.stdout).strip().splitlines()
        raise BackupError(f"{tool} a échoué : {' / '.join(message[-5:]) or 'code ' + str(result.returncode)}")
