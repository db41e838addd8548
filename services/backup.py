"""`flask backup` and `flask restore`: the SQLite online backup API, or pg_dump / pg_restore, and beside the
database's file the families' documents (``<file>.documents.tar``).

A backup is verified once written (SQLite: an integrity check of the copy; PostgreSQL: the dump restored
into a scratch database). A restore is all or nothing: the file is checked before anything is replaced,
PostgreSQL's restore runs in one transaction that stops at the first error, and the tool's own message
is shown. It is refused while the portal is running, and the number counters never go back: a
reservation or invoice number already shown to a family is never handed out again.

The documents are archived after the database is copied (a stored file is never changed, only added): every
document the copy knows is in the archive, which is checked so. A restore unpacks the archive beside the
live directory first, then restores the database, then swaps the directories; the directory it replaces
is kept, renamed, until an administrator removes it.
"""
from __future__ import annotations

import fcntl
import os
import sqlite3
import subprocess
import tarfile
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


def documents_archive(backup_file: Path) -> Path:
    return backup_file.with_name(backup_file.name + ".documents.tar")


def _stored_names(url: str) -> set[str]:
    """The files the database at ``url`` says are stored (its ``document`` rows)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return set(conn.execute(text("SELECT stored_name FROM document")).scalars())
    finally:
        engine.dispose()


def _archive_documents(folder: Path, archive: Path, expected: set[str]) -> None:
    partial = archive.with_name(archive.name + ".part")
    with tarfile.open(partial, "w") as tar:
        for path in sorted(folder.iterdir()) if folder.is_dir() else []:
            if path.is_file() and not path.name.startswith("."):
                tar.add(path, arcname=path.name, recursive=False)
    _check_archive(partial, expected)
    os.replace(partial, archive)


def _check_archive(archive: Path, expected: set[str]) -> None:
    """Plain files only, no folder or path in a name, and every one ``expected``; BackupError if not."""
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
    except (tarfile.TarError, OSError) as exc:
        raise BackupError(f"L'archive des documents {archive} est illisible : {exc}.") from None
    if any(not m.isfile() or "/" in m.name or m.name.startswith(".") for m in members):
        raise BackupError(f"L'archive des documents {archive} contient autre chose que des documents.")
    missing = expected - {m.name for m in members}
    if missing:
        raise BackupError(f"L'archive des documents {archive} n'a pas {len(missing)} document(s) de la base.")


def backup(url: str, destination: Path, documents: Path | None = None) -> Path:
    """A consistent copy of the database, taken while the portal keeps running, then verified; and the
    documents of ``documents`` (a directory) beside it."""
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
    if documents is not None:
        # What the copy knows: the copy itself (SQLite), or the live database, read after the dump (PostgreSQL).
        known = _stored_names(f"sqlite:///{destination}" if url.startswith("sqlite") else url)
        _archive_documents(documents, documents_archive(destination), known)
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


def restore(url: str, source: Path, documents: Path | None = None) -> None:
    """Put a backup back in place of the current data: all or nothing, with the portal stopped; its
    documents (when the backup has them) in place of ``documents``."""
    if not source.exists():
        raise BackupError(f"Sauvegarde introuvable : {source}.")
    archive = documents_archive(source)
    unpacked = None
    if documents is not None and archive.exists():
        expected = _stored_names(f"sqlite:///{source}") if url.startswith("sqlite") else set()
        _check_archive(archive, expected)  # before anything is replaced
        unpacked = documents.with_name(documents.name + ".restauration")
        if unpacked.exists():
            for path in unpacked.iterdir():
                path.unlink()
        unpacked.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            tar.extractall(unpacked, filter="data")
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
    if unpacked is not None:
        if documents.exists():
            documents.rename(documents.with_name(f"{documents.name}.avant-restauration-{time.strftime('%Y%m%d-%H%M%S')}"))
        unpacked.rename(documents)


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
    # Bytes, decoded leniently: a damaged dump makes pg_restore echo its garbage back in its message.
    result = subprocess.run(command, capture_output=True)
    if result.returncode != 0:
        message = (result.stderr or result.stdout).decode(errors="replace").strip().splitlines()
        raise BackupError(f"{tool} a échoué : {' / '.join(message[-5:]) or 'code ' + str(result.returncode)}")
