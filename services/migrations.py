"""Alembic, driven from Python: `flask migrate`, the tests and the benchmarks use it the same way."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def config(url: str) -> Config:
    cfg = Config(str(MIGRATIONS / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolation: a literal % in a password must be doubled.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision``, creating it from nothing if needed."""
    command.upgrade(config(url), revision)


def downgrade(url: str, revision: str = "-1") -> None:
    """Take the database at ``url`` back to ``revision`` (one step by default), all or nothing."""
    command.downgrade(config(url), revision)


