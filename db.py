"""The database: the engine for SQLite or PostgreSQL, the request's session, the writing session."""
import select

import psycopg
from flask import abort, current_app, g, has_request_context, request
from psycopg.rows import namedtuple_row
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlmodel import Session, create_engine

# --- engine --------------------------------------------------------------------------


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    """SQLite: enforce foreign keys, let readers and one writer work together, wait on locks."""
    module = type(dbapi_connection).__module__
    if module.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()


APPLICATION_NAME = "ribambelle"


def make_engine(url: str):
    """An engine for ``url``; SQLite connections may cross threads (the dev server's).

    On SQLite, SQLAlchemy emits BEGIN itself, so that a session asking for ``sqlite_immediate``
    (see ``writing_session``) takes the write lock first, before it reads what it will change.
    """
    if not url.startswith("sqlite"):
        # Named, so that `flask restore` can tell the portal's own connections from an admin's psql.
        engine = create_engine(url, connect_args={"application_name": APPLICATION_NAME})
        event.listen(engine, "checkout", _closed_by_the_server)
        return engine
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})

    @event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection, connection_record):
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn):
        immediate = conn.get_execution_options().get("sqlite_immediate")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _closed_by_the_server(dbapi_connection, connection_record, connection_proxy):
    """Hand out no pooled connection that PostgreSQL has ended (a restart, a failover, an idle timeout,
    pg_terminate_backend): the pool takes a fresh one instead.

    An idle connection's socket has nothing to read unless the server has written its last words (the
    FATAL message) and closed it; looking costs one system call, where a ping (``pool_pre_ping``) would
    cost a round trip to the server at every request.
    """
    if dbapi_connection.closed:
        raise DisconnectionError("connexion fermée")
    readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
    if readable:
        raise DisconnectionError("connexion fermée par le serveur")


def writing_session(engine) -> Session:
    """A session for a read-check-write transaction (confirming a booking, numbering).

    On SQLite it begins with BEGIN IMMEDIATE: writers queue up instead of failing on a stale
    snapshot. On PostgreSQL the rows it updates are locked by the UPDATEs themselves.
    """
    immediate = engine.__dict__.get("ribambelle_immediate")
    if immediate is None:  # made once per engine, kept on it: making it costs a tenth of a bare click
        immediate = engine.__dict__["ribambelle_immediate"] = engine.execution_options(sqlite_immediate=True)
    return Session(immediate, expire_on_commit=False, info={"writing": True})


def first_row(db: Session, statement, params: dict) -> dict | None:
    """The first row, as a dict by column name, of the read that opens a request (who is logged in),
    sent straight through the driver: every request of a logged-in account runs it, and SQLAlchemy's
    execution of one statement costs several times what the database takes to answer it.

    It runs in the request's transaction (its first statement), except in a writing session on SQLite:
    there it runs on a pooled connection of its own, outside any transaction, so that the write lock
    (BEGIN IMMEDIATE) is taken by the request's own transaction and held only while it reads and
    writes what it changes. The engine's listeners see it as any other statement; a driver's error is
    raised as SQLAlchemy raises it, and a connection the server ended is never handed out again.
    """
    engine = db.get_bind()
    sql, defaults, places = _compiled(statement, engine.dialect)
    values = {**defaults, **params}
    if places is not None:  # SQLite's qmark style: the values in the order of their places
        values = tuple(values[name] for name in places)
    if engine.dialect.name == "sqlite" and _writing(db) and not db.in_transaction():
        raw = engine.raw_connection()
        try:
            return _first(raw.driver_connection, sql, values, engine, None)
        finally:
            raw.close()
    connection = db.connection()
    return _first(connection.connection.dbapi_connection, sql, values, engine, connection)


def _first(dbapi_connection, sql: str, values, engine, connection) -> dict | None:
    cursor = dbapi_connection.cursor()
    try:
        (connection or engine).dispatch.before_cursor_execute(connection, cursor, sql, values, None, False)
        cursor.execute(sql, values)
        rows = cursor.fetchall()
        names = [column[0] for column in cursor.description]
    except engine.dialect.loaded_dbapi.Error as error:
        raise _driver_error(error, sql, values, engine.dialect, dbapi_connection, connection) from error
    finally:
        cursor.close()
    return dict(zip(names, rows[0])) if rows else None


def upsert_insert(db: Session):
    """The ``insert`` of the session's database, the one with ON CONFLICT (PostgreSQL or SQLite)."""
    return postgresql_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert


def get_or_404(model, ident):
    """The row of ``model`` with this primary key in the request's session, or a 404 answer."""
    row = get_db().get(model, ident)
    if row is None:
        abort(404)
    return row


def get_db() -> Session:
    """The request's database session, opened on first use and closed at teardown.

    A POST (or any other writing method) gets a ``writing_session``: on SQLite its transactions
    take the write lock at BEGIN, so what it read cannot change before it writes.
    """
    if "db" not in g:
        engine = current_app.extensions["ribambelle.engine"]
        if has_request_context() and request.method not in ("GET", "HEAD", "OPTIONS"):
            g.db = writing_session(engine)
        else:
            g.db = Session(engine, expire_on_commit=False)
    return g.db


def close_db(exc=None) -> None:
    """End the request's session. A reading one (GET) that went well ends its transaction with a COMMIT,
    which changes nothing: at a ROLLBACK psycopg forgets every statement it had prepared on the
    connection, so PostgreSQL would plan each of the hot routes' statements again at every request
    (1 ms for the planning's first). A writing session, or a failed request, rolls back what it did
    not commit itself."""
    db = g.pop("db", None)
    if db is None:
        return
    if exc is None and not _writing(db) and db.in_transaction() and not _wrote(db):
        try:
            db.commit()
        except Exception:  # the database went away: closing below rolls back what is left
            current_app.logger.warning("Fin de lecture impossible à valider", exc_info=True)
    db.close()


def _wrote(db: Session) -> bool:
    """The session's transaction has written, or holds changes it would write: only a ROLLBACK ends it."""
    return bool(db.info.get("wrote") or db.new or db.dirty or db.deleted)


@event.listens_for(Session, "after_flush")
def _flushed(session, flush_context) -> None:
    session.info["wrote"] = True


@event.listens_for(Session, "do_orm_execute")
def _executed(state) -> None:
    if not state.is_select:  # an UPDATE, INSERT, DELETE or text() run through the session
        state.session.info["wrote"] = True


@event.listens_for(Session, "after_transaction_end")
def _ended(session, transaction) -> None:
    if transaction.parent is None:  # the outermost: committed or rolled back
        session.info.pop("wrote", None)


def _writing(db: Session) -> bool:
    """A ``writing_session`` (on SQLite, one whose transactions begin IMMEDIATE)."""
    return db.info.get("writing", False)


# --- statements sent together ----------------------------------------------------------


def in_one_trip(db: Session, steps: list[tuple], commit: bool = False) -> list[list]:
    """Run ``steps`` ((statement, parameters) pairs, Core statements) in order in the session's
    transaction, then commit if ``commit``; the rows each returned (read by column name).

    On PostgreSQL they travel together, in one round trip (psycopg's pipeline mode): a click holds its
    draft's row lock from its first statement to its COMMIT, and each wait for an answer also waits for
    the interpreter lock, which the server's other threads hold while they draw pages. Each statement
    still runs after the one before it has ended, so a read sees what the lock before it protects.
    On SQLite, where a round trip costs nothing, they run one after the other. The statements are
    built once (a module's constants): each is compiled once, and kept.
    """
    if not steps and not commit:
        return []
    db.flush()  # what the session holds, written first: the steps see it, as its own queries would
    if any(statement.is_dml for statement, _ in steps):
        db.info["wrote"] = True  # so that close_db never commits writes left uncommitted (``_wrote``)
    connection = db.connection()
    if connection.dialect.name != "postgresql":
        results = [connection.execute(statement, params) for statement, params in steps]
        rows = [result.all() if result.returns_rows else [] for result in results]
        if commit:
            db.commit()
        return rows
    raw = connection.connection.dbapi_connection
    cursors, sql, params = [], "", {}
    try:
        with raw.pipeline():
            for statement, values in steps:
                sql, defaults, _ = _compiled(statement, connection.dialect)
                cursor, params = raw.cursor(row_factory=namedtuple_row), {**defaults, **values}
                # seen by the engine's listeners as any other statement (echo, the benchmarks' counts)
                connection.dispatch.before_cursor_execute(connection, cursor, sql, params, None, False)
                cursor.execute(sql, params)
                cursors.append(cursor)
            if commit:  # a statement of the batch (psycopg's commit() would wait for its own round trip)
                raw.cursor().execute(b"COMMIT")
        rows = [cursor.fetchall() if cursor.description else [] for cursor in cursors]
    except psycopg.Error as error:
        raise _driver_error(error, sql, params, connection.dialect, raw, connection) from error
    if commit:
        db.commit()  # the session's end of the transaction the pipeline committed (psycopg sends nothing)
    return rows


def _driver_error(error, sql: str, params, dialect, dbapi_connection, connection) -> DBAPIError:
    """A driver's error, for a statement sent past SQLAlchemy's execution, as SQLAlchemy raises it
    (IntegrityError, OperationalError…); a connection the server ended is invalidated, never handed out
    again: the pool opens a new one."""
    lost = dialect.is_disconnect(error, dbapi_connection, None)
    if lost and connection is not None:
        connection.invalidate(error)
    return DBAPIError.instance(sql, params, error, dialect.loaded_dbapi.Error, connection_invalidated=lost,
                               dialect=dialect)


_COMPILED: dict = {}


def _compiled(statement, dialect) -> tuple[str, dict, tuple | None]:
    """The SQL of a statement built once (a module's constant), its fixed parameters, and for a
    positional style (SQLite's ``?``) the names of its parameters in order: compiled once."""
    key = (statement, dialect.name)  # the statement itself: kept alive, never mistaken for another
    if key not in _COMPILED:
        compiled = statement.compile(dialect=dialect)
        _COMPILED[key] = (str(compiled), {k: v for k, v in compiled.params.items() if v is not None},
                          tuple(compiled.positiontup) if compiled.positional else None)
    return _COMPILED[key]
