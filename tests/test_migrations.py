"""The Alembic migrations build exactly the schema that models.py describes, on both backends."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlmodel import SQLModel

import models  # noqa: F401
from db import get_db
from services import billing, demo_data, migrations
from services.migrations import config


def test_migrations_produce_exactly_the_models_schema(database_url):
    engine = create_engine(database_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": False})
        diff = compare_metadata(context, SQLModel.metadata)
    engine.dispose()
    assert diff == []


def test_migrations_reach_head(database_url):
    head = ScriptDirectory.from_config(config(database_url)).get_current_head()
    engine = create_engine(database_url)
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head
    engine.dispose()


def test_every_migration_goes_down_and_up_on_a_database_holding_data(make_app, database_url):
    """From the head with the demo town, each revision in turn is undone and redone, then undone, to the
    base; then everything is applied again. A failing step leaves nothing half done (one transaction)."""
    app = make_app()
    with app.app_context():
        demo_data.seed(get_db(), app.extensions["ribambelle.hasher"])
    app.extensions["ribambelle.engine"].dispose()
    revisions = [s.revision for s in ScriptDirectory.from_config(migrations.config(database_url)).walk_revisions()]
    assert len(revisions) >= 9
    engine = create_engine(database_url)
    for revision in revisions:
        migrations.downgrade(database_url, "-1")
        migrations.upgrade(database_url, revision)  # redone over what the downgrade left
        migrations.downgrade(database_url, "-1")
        with engine.connect() as conn:
            leftovers = [t for t in inspect(conn).get_table_names() if t.startswith("_alembic_tmp")]
        assert leftovers == [], revision
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() is None
    migrations.upgrade(database_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": False})
        assert compare_metadata(context, SQLModel.metadata) == []
        assert conn.execute(text("SELECT count(*) FROM family")).scalar_one() == 0  # the base dropped the data
    engine.dispose()


def test_payment_methods_are_renamed_to_english_codes_and_back(make_app, database_url):
    """The demo's cheque, and a cash and a transfer payment recorded under the French codes of before."""
    app = make_app()
    with app.app_context():
        demo_data.seed(get_db(), app.extensions["ribambelle.hasher"])
    app.extensions["ribambelle.engine"].dispose()
    engine = create_engine(database_url)
    migrations.downgrade(database_url, "0642d952e032")
    with engine.begin() as conn:
        conn.execute(text("UPDATE payment SET method = 'especes' WHERE id = (SELECT min(id) FROM payment)"))
        assert conn.execute(text("SELECT count(*) FROM payment WHERE method = 'especes'")).scalar_one() == 1
    migrations.upgrade(database_url)
    with engine.connect() as conn:
        methods = {m for (m,) in conn.execute(text("SELECT method FROM payment"))}
    assert "cash" in methods and methods <= set(billing.PAYMENT_METHODS)
    migrations.downgrade(database_url, "0642d952e032")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM payment WHERE method = 'especes'")).scalar_one() == 1
    migrations.upgrade(database_url)
    engine.dispose()
