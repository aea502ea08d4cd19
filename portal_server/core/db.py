"""SQLAlchemy 2 engine, session and declarative base.

One scoped session per thread, removed at the end of every app context. SQLite runs in WAL
mode; requests that write (and jobs, the CLI) begin with ``BEGIN IMMEDIATE`` so that writers
queue instead of failing on stale snapshots, while GET requests read in deferred transactions
and never wait behind a writer. A write request whose view is marked ``reads_first`` reads in a
deferred transaction too and takes the write lock only inside ``write_phase()``, for the few
statements that write (SQLite has one writer: every millisecond it holds the lock is a
millisecond every other writer waits). PostgreSQL is used as it is.
"""
from __future__ import annotations

import datetime as dt
import fcntl
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from flask import current_app, has_request_context, request
from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, scoped_session, sessionmaker

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every table; constraint names follow ``NAMING`` for Alembic."""

    metadata = MetaData(naming_convention=NAMING)


#: The session every feature uses: ``from portal_server.core.db import session``.
session = scoped_session(sessionmaker(expire_on_commit=False))

_engine: Engine | None = None


def utcnow() -> dt.datetime:
    """Timezone-aware now in UTC (stored as such; shown in the city's timezone)."""
    return dt.datetime.now(dt.timezone.utc)


def add_once(obj, existing):
    """Insert ``obj`` unless a unique key (an idempotency key, one report per week...) already holds
    a row: → ``(obj, True)``, or ``(existing(), False)`` when a concurrent retry won the race. The
    unique constraint settles the race inside a savepoint, so the caller's transaction goes on."""
    try:
        with session.begin_nested():
            session.add(obj)
            session.flush()
        return obj, True
    except IntegrityError:
        found = existing()
        if found is None:
            raise
        return found, False


_INSERTS: dict = {}


def insert_statement(table, pk, unless_taken: str | None):
    """``INSERT … RETURNING pk`` of ``table`` (``ON CONFLICT DO NOTHING`` on ``unless_taken``),
    built once per process and dialect: executed with a row of parameters, its SQL comes from
    SQLAlchemy's compiled cache without rebuilding a statement (and its cache key) every time."""
    dialect = session.get_bind().dialect.name
    key = (table.name, unless_taken, dialect)
    stmt = _INSERTS.get(key)
    if stmt is None:
        if dialect in ("sqlite", "postgresql"):
            from importlib import import_module
            stmt = import_module(f"sqlalchemy.dialects.{dialect}").insert(table)
            if unless_taken:
                stmt = stmt.on_conflict_do_nothing(index_elements=[unless_taken])
        else:  # pragma: no cover - the two databases we run on
            from sqlalchemy import insert
            stmt = insert(table)
        stmt = _INSERTS[key] = stmt.returning(pk)
    return stmt


def insert_row(obj, *, unless_taken: str | None = None) -> bool:
    """INSERT ``obj``'s row with one Core statement — no unit of work, no savepoint — then keep
    ``obj`` in the session as a loaded, unchanged row (its later flushes write nothing). For a hot
    path writing one new row per request; every column is given (unset ones get their column's
    scalar default or NULL), so reading any of them later costs no SELECT. ``unless_taken``
    names a unique column (an idempotency key): when another transaction already holds its
    value, nothing is inserted and False is returned (``ON CONFLICT DO NOTHING``: the race is
    settled by the unique index, the caller's transaction goes on). Relationships of ``obj`` that
    hold new objects must be inserted the same way by the caller before the next flush."""
    from sqlalchemy import inspect as sa_inspect
    from sqlalchemy.orm import make_transient_to_detached

    mapper = sa_inspect(obj).mapper
    table = mapper.local_table
    values = {}
    for attr in mapper.column_attrs:
        col = attr.columns[0]
        if col.primary_key and getattr(obj, attr.key) is None:
            continue
        if attr.key not in obj.__dict__:
            default = col.default.arg if col.default is not None and col.default.is_scalar else None
            if col.default is not None and col.default.is_callable:
                default = col.default.arg({})
            setattr(obj, attr.key, default)
        values[col.name] = getattr(obj, attr.key)
    pk = mapper.primary_key[0]
    row = session.execute(insert_statement(table, pk, unless_taken), values).first()
    if row is None:
        return False
    setattr(obj, mapper.get_property_by_column(pk).key, row[0])
    make_transient_to_detached(obj)
    return True


class WriterQueue:
    """The writers of one SQLite file queue here, not in SQLite's busy handler.

    SQLite lets a blocked writer sleep 1, 2, 5 … then 100 ms between tries: under fifty writers a
    waiter that has slept long keeps losing the lock to newcomers (seconds of tail latency for a
    5 ms write). Here the threads of a process wait on a lock the OS wakes them from, and the
    processes on a ``flock`` of ``run/<db>-writer`` beside the database (runtime files, not backed
    up) tried every millisecond; the holder then finds
    SQLite's own lock free. Taken just before ``BEGIN IMMEDIATE``, given back by the connection's
    commit or rollback. After ``timeout`` s it gives up waiting and lets SQLite decide as before
    (its busy timeout), so a stuck holder costs what it cost without the queue."""

    def __init__(self, path: str, timeout: float = 30.0):
        run = Path(path).parent / "run"
        run.mkdir(mode=0o700, exist_ok=True)
        self.path, self.timeout = str(run / (Path(path).name + "-writer")), timeout
        self._threads = threading.Lock()
        # A forked child (RQ's work horse) must not inherit a lock held by another thread.
        os.register_at_fork(after_in_child=self._fresh)

    def _fresh(self) -> None:
        self._threads = threading.Lock()

    def acquire(self) -> int | None:
        deadline = time.monotonic() + self.timeout
        if not self._threads.acquire(timeout=self.timeout):
            return None
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            self._threads.release()
            return None
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    self._threads.release()
                    return None
                time.sleep(0.001)

    def release(self, fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        finally:
            self._threads.release()


def _queued_connection(queue: WriterQueue):
    """A sqlite3 connection class that gives the writer queue back when its transaction ends."""

    class QueuedConnection(sqlite3.Connection):
        writer_fd: int | None = None

        def _give_back(self) -> None:
            fd, self.writer_fd = self.writer_fd, None
            if fd is not None:
                queue.release(fd)

        def commit(self):
            try:
                super().commit()
            finally:
                self._give_back()

        def rollback(self):
            try:
                super().rollback()
            finally:
                self._give_back()

        def close(self):
            try:
                super().close()
            finally:
                self._give_back()

    return QueuedConnection


def make_engine(url: str) -> Engine:
    """An engine for ``url`` with the SQLite pragmas we rely on."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        queue = None
        connect_args = {"timeout": 30, "check_same_thread": False}
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            queue = WriterQueue(path)
            connect_args["factory"] = _queued_connection(queue)
        engine = create_engine(url, connect_args=connect_args)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # pragma: no cover - exercised by every test
            dbapi_conn.isolation_level = None  # let us emit BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            # FULL: a commit residents are told is "received" (feedback, check-in, help call)
            # survives a power cut, not only an application crash.
            cur.execute("PRAGMA synchronous=FULL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):
            # Writers take the lock up front (they queue instead of failing on a stale snapshot);
            # reads — GET requests — run in deferred transactions and never wait for a writer.
            if _reading_request():
                conn.exec_driver_sql("BEGIN")
                return
            dbapi = conn.connection.dbapi_connection
            if queue is not None and getattr(dbapi, "writer_fd", 1) is None:
                dbapi.writer_fd = queue.acquire()
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except Exception:
                if hasattr(dbapi, "_give_back"):
                    dbapi._give_back()
                raise

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


_WRITING = "ctv.db.writing"


def _reading_request() -> bool:
    """True inside an HTTP request with a safe method (GET/HEAD/OPTIONS), or in a ``reads_first``
    view outside its ``write_phase()``: its transaction only reads."""
    if not has_request_context():
        return False
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return True
    if request.environ.get(_WRITING):
        return False
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    return bool(getattr(view, "reads_first", False))


def reads_first(view):
    """Mark a write view (POST...) whose reads — credentials, validation, look-ups — run in a
    deferred transaction before it writes inside ``write_phase()``. Place it under the route
    decorator (the wrappers between keep the mark: ``functools.wraps`` copies it)."""
    view.reads_first = True
    return view


@contextmanager
def write_phase():
    """The writing part of a ``reads_first`` view: ends the read transaction (nothing to write in
    it) so that the next statement begins the write transaction (``BEGIN IMMEDIATE`` on SQLite);
    the view commits inside the block. Outside such a view it only commits what came before."""
    session.commit()
    flags = request.environ if has_request_context() else {}
    flags[_WRITING] = True
    try:
        yield
    finally:
        flags.pop(_WRITING, None)


def init_app(app) -> None:
    """Bind the session to the app's database and clean it up after every app context."""
    global _engine
    url = app.config["SETTINGS"].database_url
    _engine = make_engine(url)
    _private_sqlite_files(url)
    app.extensions["db_engine"] = _engine
    session.remove()
    session.configure(bind=_engine)

    @app.teardown_appcontext
    def _remove(_exc):
        session.remove()


def _private_sqlite_files(url: str) -> None:
    """The SQLite database holds personal data: readable by its owner only (its -wal and -shm
    files take the same mode from it)."""
    if not url.startswith("sqlite"):
        return
    path = Path(url.split("///", 1)[-1])
    if path.name and str(path) != ":memory:":
        if not path.exists():
            path.touch(mode=0o600)
        for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if p.exists() and p.stat().st_mode & 0o077:
                os.chmod(p, 0o600)


def engine() -> Engine:
    """The engine bound by ``init_app`` (for migrations and health checks)."""
    assert _engine is not None, "db.init_app() was not called"
    return _engine


def upgrade(url: str) -> None:
    """Apply every Alembic migration (all heads) to ``url``."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["engine_url"] = url
    command.upgrade(cfg, "heads")
