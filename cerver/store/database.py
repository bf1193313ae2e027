"""Engines, transactions and migrations for the embedded (SQLite) and shared (PostgreSQL) stores.

The store's queries are plain synchronous functions of a SQLAlchemy ``Connection``; this module
runs each one as a single transaction:

* SQLite: on the standard ``sqlite3`` driver in one worker thread, so one transaction costs one
  thread hop (an async driver pays a hop per driver call, several per statement: measured 3×
  slower here). Reads and writes share that thread (on a connection each), writes opened with
  ``BEGIN IMMEDIATE``, so writers in this process queue instead of contending. Writers in
  other processes (``cerver serve --workers N``) queue on an advisory lock file next to the
  database (``flock``), which wakes the next writer the moment the last one commits; SQLite's
  own ``busy_timeout`` (which retries by sleeping 1, 2, 5 … 100 ms) stays the fallback for
  writers that do not take it. WAL mode with ``synchronous=NORMAL``.
* PostgreSQL: on ``asyncpg`` through ``AsyncConnection.run_sync``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import create_async_engine

__all__ = ["Database"]

T = TypeVar("T")
Query = Callable[[sa.Connection], T]

_MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


class Database:
    """Runs queries (sync functions of a ``Connection``) as transactions, off the event loop."""

    def __init__(self, url: str) -> None:
        self.url = sa.make_url(url)
        self.dialect = self.url.get_backend_name()
        if self.dialect == "sqlite":
            self._backend: _Backend = _SQLiteBackend(self.url)
        else:
            self._backend = _AsyncBackend(url)

    async def read(self, query: Query[T]) -> T:
        """Run ``query`` in a read transaction and return its result."""
        return await self._backend.run(query, write=False)

    async def write(self, query: Query[T]) -> T:
        """Run ``query`` in a transaction, committed when it returns, and return its result."""
        return await self._backend.run(query, write=True)

    async def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        await self.write(_upgrade)

    async def dispose(self) -> None:
        await self._backend.dispose()


class _Backend:
    async def run(self, query: Query[T], *, write: bool) -> T:
        raise NotImplementedError

    async def dispose(self) -> None:
        raise NotImplementedError


class _SQLiteBackend(_Backend):
    def __init__(self, url: sa.URL) -> None:
        url = url.set(drivername="sqlite")  # the stdlib driver, whatever the URL named
        self._write_lock: int | None = None
        # Every transaction, read or write, runs on this one thread. With four reader threads
        # beside the writer's, a turn (one read, two writes) cost 12-15 % more of the
        # gateway's CPU, spent handing the GIL from thread to thread; on one thread a file
        # store costs what the in-memory one (always run so) does. SQLite writes one at a
        # time anyway; a long read delays what is queued behind it, and
        # `cerver serve --workers N` is the way to more cores.
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="cerver-db")
        if not url.database or url.database == ":memory:":
            # The database lives in its one connection: every query, read or write, runs on
            # it (nothing is on disk, and no other process can see it).
            self._writer = _sqlite_engine(url, immediate=True, pool=None)
            self._write_connections = _KeptConnections(self._writer)
            self._reader = self._writer
            self._read_connections = self._write_connections
            return
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        # Reads on a connection of their own, which never takes the write lock.
        self._reader = _sqlite_engine(url, immediate=False, pool=1)
        self._writer = _sqlite_engine(url, immediate=True, pool=1)
        self._read_connections = _KeptConnections(self._reader)
        self._write_connections = _KeptConnections(self._writer)
        path = f"{url.database}-writelock"
        self._write_lock = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    async def run(self, query: Query[T], *, write: bool) -> T:
        loop = asyncio.get_running_loop()
        if write:
            job = functools.partial(self._write_transaction, query)
        else:
            job = functools.partial(self._read_connections.transaction, query)
        return await loop.run_in_executor(self._thread, job)

    def _write_transaction(self, query: Query[T]) -> T:
        """A write transaction, holding the advisory lock that queues other processes'
        writers (none for an in-memory database: no other process can see it)."""
        if self._write_lock is None:
            return self._write_connections.transaction(query)
        fcntl.flock(self._write_lock, fcntl.LOCK_EX)
        try:
            return self._write_connections.transaction(query)
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(self._write_lock, fcntl.LOCK_UN)

    async def dispose(self) -> None:
        self._thread.shutdown(wait=True)
        self._read_connections.close()
        self._write_connections.close()
        self._reader.dispose()
        self._writer.dispose()
        if self._write_lock is not None:
            os.close(self._write_lock)
            self._write_lock = None


class _KeptConnections:
    """One connection per worker thread, kept open between that thread's transactions (the
    engine's pool holds one per thread): a check-out and a check-in of the pool per
    transaction cost more than most of a turn's statements. A connection is dropped after a
    driver error, so the thread's next transaction starts on a fresh one."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._local = threading.local()
        self._all: list[sa.Connection] = []
        self._guard = threading.Lock()

    def transaction(self, query: Query[T]) -> T:
        conn: sa.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._engine.connect()
            with self._guard:
                self._all.append(conn)
        try:
            with conn.begin():
                return query(conn)
        except BaseException as exc:
            if (
                conn.invalidated
                or not isinstance(exc, Exception)
                or isinstance(exc, sa.exc.DBAPIError)
            ):
                self._drop(conn)
            raise

    def _drop(self, conn: sa.Connection) -> None:
        self._local.conn = None
        with self._guard:
            if conn in self._all:
                self._all.remove(conn)
        with contextlib.suppress(Exception):
            conn.close()

    def close(self) -> None:
        """Close every kept connection (their threads are done)."""
        with self._guard:
            kept, self._all = self._all, []
        for conn in kept:
            with contextlib.suppress(Exception):
                conn.close()


def _sqlite_engine(url: sa.URL, *, immediate: bool, pool: int | None) -> sa.Engine:
    """An engine of ``pool`` connections, or of one shared connection (``None``: an
    in-memory database, which exists only in its connection)."""
    pooling: dict[str, Any] = (
        {"poolclass": sa.pool.StaticPool}
        if pool is None
        else {"pool_size": pool, "max_overflow": 0}
    )
    engine = sa.create_engine(
        url, connect_args={"timeout": 30, "check_same_thread": False}, **pooling
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy (not the driver) decide when transactions begin.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # On the driver's connection itself: through SQLAlchemy this one fixed statement
        # costs ~20 us, as much again as the rest of beginning a transaction.
        conn.connection.dbapi_connection.execute(begin)  # type: ignore[union-attr]

    return engine


class _AsyncBackend(_Backend):
    def __init__(self, url: str) -> None:
        self._engine = create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)

    async def run(self, query: Query[T], *, write: bool) -> T:
        if write:
            async with self._engine.begin() as conn:
                return await conn.run_sync(query)
        async with self._engine.connect() as conn:
            return await conn.run_sync(query)

    async def dispose(self) -> None:
        await self._engine.dispose()


def _upgrade(conn: sa.Connection) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = conn
    command.upgrade(config, "head")
