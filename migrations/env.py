"""Alembic environment: the target schema is models.py's SQLModel metadata."""
import os
from logging.config import fileConfig
from pathlib import Path

from alembic import context
from sqlalchemy import engine_from_config, event, pool
from sqlmodel import SQLModel

import models  # noqa: F401  (registers every table on SQLModel.metadata)

config = context.config
if config.config_file_name is not None and not config.attributes.get("skip_logging"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

if not config.get_main_option("sqlalchemy.url"):
    default = f"sqlite:///{Path(__file__).resolve().parent.parent / 'instance' / 'ribambelle.sqlite'}"
    config.set_main_option("sqlalchemy.url", os.environ.get("DATABASE_URL", default).replace("%", "%%"))

target_metadata = SQLModel.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    if connectable.dialect.name == "sqlite":
        # pysqlite commits before each DDL statement on its own: a migration failing half-way would leave
        # its half (a _alembic_tmp_ table, a column dropped). SQLAlchemy emits BEGIN itself instead, so each
        # run is one transaction, all or nothing, as on PostgreSQL.
        # A batch operation rebuilds a table that others reference (copy, drop, rename): foreign keys are
        # checked once at the end instead (PRAGMA foreign_key_check below), as SQLite's own guide says.
        @event.listens_for(connectable, "connect")
        def _no_implicit_begin(dbapi_connection, connection_record):
            dbapi_connection.isolation_level = None
            dbapi_connection.execute("PRAGMA foreign_keys = OFF")

        @event.listens_for(connectable, "begin")
        def _begin(conn):
            conn.exec_driver_sql("BEGIN")

    with connectable.connect() as connection:
        # batch mode lets ALTER TABLE work on SQLite too
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
            if connection.dialect.name == "sqlite":
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:  # raised inside the transaction: the whole run is rolled back
                    raise RuntimeError(f"Migration refusée : références cassées {broken[:5]}")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
