"""`flask backup` and `flask restore`: the SQLite online backup API, or pg_dump / pg_restore."""
from __future__ import annotations

import sqlite3
import subprocess
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import make_url


def _sqlite_path(url: str) -> str:
    return make_url(url).database


def _libpq_url(url: str) -> str:
    """postgresql+psycopg://... as the PostgreSQL tools expect it (postgresql://...)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def default_destination(url: str, folder: Path) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    suffix = "sqlite" if url.startswith("sqlite") else "dump"
    return folder / f"ribambelle-{stamp}.{suffix}"


def backup(url: str, destination: Path) -> Path:
    """A consistent copy of the database, taken while the portal keeps running."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("sqlite"):
        source = sqlite3.connect(_sqlite_path(url))
        target = sqlite3.connect(destination)
        with target:
            source.backup(target)
        target.close()
        source.close()
    else:
        subprocess.run(["pg_dump", "--format=custom", "--no-owner", f"--file={destination}", _libpq_url(url)],
                       check=True, capture_output=True)
    return destination


def restore(url: str, source: Path) -> None:
    """Put a backup back in place of the current data (stop the portal first)."""
    if not source.exists():
        raise FileNotFoundError(source)
    if url.startswith("sqlite"):
        backup_db = sqlite3.connect(source)
        target = sqlite3.connect(_sqlite_path(url))
        with target:
            backup_db.backup(target)
        target.close()
        backup_db.close()
    else:
        subprocess.run(["pg_restore", "--clean", "--if-exists", "--no-owner", f"--dbname={_libpq_url(url)}", str(source)],
                       check=True, capture_output=True)
