"""Engines, transactions and migrations for the embedded (SQLite) and shared (PostgreSQL) stores.

The store's queries are plain synchronous functions of a SQLAlchemy ``Connection``; this module
runs each one as a single transaction:

* SQLite file: writes on the event loop's own thread, holding an advisory lock file next to
  the database (``flock``) that queues the writers of every process on the file
  (``cerver serve --workers N``) and wakes the next one the moment the last one commits
  (:class:`_LoopWrites`); reads on one worker thread, on a connection of their own (WAL mode,
  ``synchronous=NORMAL``: reads never wait for writes). The standard ``sqlite3`` driver: an
  async one pays a thread hop per driver call, several per statement (measured 3× slower).
* SQLite in memory: reads and writes on the one connection the database lives in, on the
  worker thread.
* PostgreSQL: on ``asyncpg`` through ``AsyncConnection.run_sync``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import create_async_engine

__all__ = ["Database"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Query = Callable[[sa.Connection], T]

_MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
#: How long a checkpoint waits for readers on an older snapshot, holding the write lock.
_CHECKPOINT_WAIT_S = 0.2


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
        # Reads (and, in memory, writes) run on this one thread. With four reader threads
        # a turn cost 12-15 % more of the gateway's CPU, spent handing the GIL from thread
        # to thread; a long read delays only the reads queued behind it.
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="cerver-db")
        self._engines: list[sa.Engine] = []
        self._database = url.database
        self._checkpointer: sqlite3.Connection | None = None
        if not url.database or url.database == ":memory:":
            # The database lives in its one connection: every query, read or write, runs on
            # it (nothing is on disk, and no other process can see it).
            engine = self._engine(url, immediate=True, one_connection=True)
            self._reads = self._thread_writes = _KeptConnections(engine)
            self._loop_writes: _LoopWrites | None = None
            return
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        # Reads on a connection of their own, which never takes the write lock.
        self._reads = _KeptConnections(self._engine(url, immediate=False))
        # Writes whose BEGIN found the file locked by a program that is not Cerver: they wait
        # on SQLite's busy timeout here, off the event loop.
        self._thread_writes = _KeptConnections(self._engine(url, immediate=True))
        loop_engine = self._engine(url, immediate=True, busy_timeout_ms=0, autocheckpoint=0)
        self._loop_writes = _LoopWrites(
            _KeptConnections(loop_engine),
            Path(f"{url.database}-writelock"),
            checkpoint=functools.partial(self._thread.submit, self._checkpoint),
        )

    def _engine(self, url: sa.URL, **options: Any) -> sa.Engine:
        engine = _sqlite_engine(url, **options)
        self._engines.append(engine)
        return engine

    async def run(self, query: Query[T], *, write: bool) -> T:
        loop = asyncio.get_running_loop()
        if write and self._loop_writes is not None:
            try:
                return await self._loop_writes.run(query)
            except _LockedByAnotherProgram:
                job = functools.partial(self._loop_writes.holding_lock, self._thread_writes, query)
                return await loop.run_in_executor(self._thread, job)
        connections = self._thread_writes if write else self._reads
        return await loop.run_in_executor(self._thread, connections.transaction, query)

    def _checkpoint(self) -> None:
        """Copy the WAL's committed pages into the database file and start the WAL over, on
        the store's thread (the file's ``fsync`` is the slowest step of any write: never on
        the event loop). A failure is logged; the next one tries again.

        RESTART, holding the write lock: no writer comes between the copy and the next
        write, so that write starts the WAL from its beginning and the file stays the size
        of :data:`_LoopWrites.CHECKPOINT_EVERY` commits. (A PASSIVE checkpoint taken while
        writes went on never saw the WAL whole: it grew by every commit, 700 MB in 30 s of
        ``run-llm`` load.) Readers go on meanwhile; it waits up to ``_CHECKPOINT_WAIT_S``
        for those on an older snapshot, and copies what it can when they outlast that.
        """
        assert self._loop_writes is not None
        try:
            if self._checkpointer is None:
                self._checkpointer = sqlite3.connect(
                    self._database,
                    isolation_level=None,
                    check_same_thread=False,
                    timeout=_CHECKPOINT_WAIT_S,
                )
            with self._loop_writes.lock_held():
                self._checkpointer.execute("PRAGMA wal_checkpoint(RESTART)")
        except sqlite3.Error as exc:
            log.warning("A WAL checkpoint of %s failed: %r", self._database, exc)

    async def dispose(self) -> None:
        self._thread.shutdown(wait=True)
        self._reads.close()
        self._thread_writes.close()
        if self._loop_writes is not None:
            self._loop_writes.close()
        if self._checkpointer is not None:
            self._checkpointer.close()
        for engine in self._engines:
            engine.dispose()


class _LockedByAnotherProgram(Exception):
    """The write's ``BEGIN`` found the file locked by a writer that does not take Cerver's
    write lock (a ``sqlite3`` shell, say); nothing of the transaction ran."""


class _LoopWrites:
    """Write transactions on a SQLite file, run on the event loop's own thread.

    A transaction of a turn is ~1 ms of Python and C (timed), and SQLite writes one at a time: run
    on a worker thread, it held the file's write lock ~2.5× that long, waiting to take the
    GIL back from the event loop after every driver call, while the other workers of
    ``cerver serve --workers N`` queued behind it; and each transaction paid two thread
    hand-offs. On the loop the lock is held for the transaction's own work.

    Writers queue on an advisory lock file next to the database (``flock``): this loop's
    writers on an ``asyncio.Lock`` first, then, one at a time, on the file, which other
    processes (and other threads' event loops) hold while they write. An ``flock`` belongs to
    the open file, so every thread opens its own. A writer that finds the file held waits on
    a helper thread, which the kernel wakes the moment the holder lets go, and then takes the
    lock itself, on the loop: the event loop never blocks on another writer, and the lock is
    never held while the loop is busy with other work (handed over to a loop that was busy,
    it sat held and idle, and the other process's writers queued behind it).

    Every connection here commits without checkpointing (a checkpoint syncs the file to
    disk): every :data:`CHECKPOINT_EVERY` commits, a checkpoint runs on the store's thread
    instead, holding the write lock (``_SQLiteBackend._checkpoint``).
    """

    CHECKPOINT_EVERY = 200

    def __init__(
        self, connections: _KeptConnections, lock_path: Path, *, checkpoint: Callable[[], Any]
    ) -> None:
        self._connections = connections
        self._lock_path = lock_path
        self._checkpoint = checkpoint
        self._local = threading.local()
        self._opened: list[int] = []
        self._guard = threading.Lock()
        self._waiters = ThreadPoolExecutor(4, thread_name_prefix="cerver-db-lock")
        self._commits = 0
        self._checkpointing: Future[Any] | None = None

    async def run(self, query: Query[T]) -> T:
        """Run ``query`` as a write transaction on this thread, holding the write lock.

        Raises:
            _LockedByAnotherProgram: SQLite's own lock was held by a program that is not
                Cerver; the caller retries where it can wait for it.
        """
        began = False

        def transaction(conn: sa.Connection) -> T:
            nonlocal began
            began = True
            return query(conn)

        lock_file = self._lock_file()
        async with self._queue():
            await self._lock(lock_file)
            try:
                result = self._connections.transaction(transaction)
            except (sa.exc.OperationalError, sqlite3.OperationalError) as exc:
                if not began and _is_busy(exc):
                    raise _LockedByAnotherProgram from exc
                raise
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)
        self._committed()
        return result

    def holding_lock(self, connections: _KeptConnections, query: Query[T]) -> T:
        """Run ``query`` on ``connections`` holding the write lock (blocking: for a thread)."""
        with self.lock_held():
            return connections.transaction(query)

    @contextlib.contextmanager
    def lock_held(self) -> Iterator[None]:
        """Hold the write lock of every process on the file (blocking: for a thread)."""
        lock_file = self._lock_file()
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)

    def _lock_file(self) -> int:
        """This thread's own handle on the lock file."""
        lock_file: int | None = getattr(self._local, "lock_file", None)
        if lock_file is None:
            lock_file = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            with self._guard:
                self._opened.append(lock_file)
            self._local.lock_file = lock_file
        return lock_file

    def _queue(self) -> asyncio.Lock:
        """The queue of this event loop's writers (a thread may run one loop after another:
        an ``asyncio.Lock`` belongs to the loop it first waited on)."""
        loop = asyncio.get_running_loop()
        queue: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = getattr(
            self._local, "queue", None
        )
        if queue is None or queue[0] is not loop:
            queue = self._local.queue = (loop, asyncio.Lock())
        return queue[1]

    async def _lock(self, lock_file: int) -> None:
        while True:
            with contextlib.suppress(BlockingIOError):
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._waiters, self._wait_until_free)

    def _wait_until_free(self) -> None:
        """Block until the lock is free (on a helper thread, with its own handle)."""
        lock_file = self._lock_file()
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        fcntl.flock(lock_file, fcntl.LOCK_UN)

    def _committed(self) -> None:
        self._commits += 1
        if self._commits % self.CHECKPOINT_EVERY == 0 and (
            self._checkpointing is None or self._checkpointing.done()
        ):
            self._checkpointing = self._checkpoint()

    def close(self) -> None:
        """Close every connection and lock file (their loops are done)."""
        self._waiters.shutdown(wait=True)
        self._connections.close()
        with self._guard:
            opened, self._opened = self._opened, []
        for lock_file in opened:
            os.close(lock_file)


def _is_busy(exc: Exception) -> bool:
    """Whether ``exc`` (the driver's, or SQLAlchemy's wrapping it) is SQLite's "locked"."""
    error = getattr(exc, "orig", exc)
    return getattr(error, "sqlite_errorname", None) in {"SQLITE_BUSY", "SQLITE_LOCKED"}


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
                or isinstance(exc, sa.exc.DBAPIError | sqlite3.Error)  # the latter: at BEGIN
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


def _sqlite_engine(
    url: sa.URL,
    *,
    immediate: bool,
    one_connection: bool = False,
    busy_timeout_ms: int = 30_000,
    autocheckpoint: int = 1000,
) -> sa.Engine:
    """An engine on ``url`` whose transactions begin ``IMMEDIATE`` (writes) or deferred.

    ``one_connection``: every ``connect()`` shares one connection (an in-memory database
    exists only in its connection); otherwise each opens its own (:class:`_KeptConnections`
    keeps one per thread). ``busy_timeout_ms``: how long a ``BEGIN`` waits for SQLite's own
    write lock before it fails. ``autocheckpoint``: WAL pages after which a commit also
    checkpoints (``0``: never).
    """
    engine = sa.create_engine(
        url,
        connect_args={"timeout": 30, "check_same_thread": False},
        poolclass=sa.pool.StaticPool if one_connection else sa.pool.NullPool,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy (not the driver) decide when transactions begin.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA wal_autocheckpoint={int(autocheckpoint)}")
        # Last: connecting (switching a new file to WAL) waits up to 30 s, whatever it is.
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
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
