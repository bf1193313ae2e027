"""The database backends: what a URL gets."""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable

import pytest
import sqlalchemy as sa

from cerver.store import Database, Store
from cerver.store.database import _LoopWrites


async def test_an_in_memory_sqlite_store_reads_what_it_wrote() -> None:
    """``:memory:`` lives in one connection: migrations, writes and reads all see it."""
    store = Store("sqlite+aiosqlite:///:memory:")
    await store.open()
    try:
        created = await asyncio.gather(*(store.accounts.create(f"acme-{i}") for i in range(5)))
        read = await asyncio.gather(*(store.accounts.get(a.id) for a, _ in created))
        assert [a.name for a in read] == [f"acme-{i}" for i in range(5)]
    finally:
        await store.close()


async def test_a_sqlite_file_reads_on_the_store_thread_and_writes_on_the_loop(
    sqlite_url: str,
) -> None:
    """Reads on the store's one thread (more reader threads cost a turn 12-15 % more CPU in
    GIL hand-offs), writes on the event loop's thread (on a worker thread, a write held the
    file's lock 2.5x its own work, waiting for the GIL), each on a connection of its own."""
    db = Database(sqlite_url)
    seen: list[tuple[str, int, int]] = []

    def note(kind: str) -> Callable[[sa.Connection], None]:
        def query(conn: sa.Connection) -> None:
            conn.execute(sa.text("SELECT 1"))
            seen.append((kind, threading.get_ident(), id(conn.connection.dbapi_connection)))

        return query

    try:
        await asyncio.gather(*(db.read(note("read")) for _ in range(4)), db.write(note("write")))
        await asyncio.gather(db.write(note("write")), *(db.read(note("read")) for _ in range(4)))
    finally:
        await db.dispose()
    threads = {kind: {thread for k, thread, _ in seen if k == kind} for kind in ("read", "write")}
    assert threads["write"] == {threading.get_ident()}
    assert len(threads["read"]) == 1
    assert threads["read"] != threads["write"]
    connections = {kind: {conn for k, _, conn in seen if k == kind} for kind in ("read", "write")}
    assert len(connections["read"]) == len(connections["write"]) == 1
    assert connections["read"] != connections["write"]


def _in_another_loop(work: Callable[[], Awaitable[object]]) -> threading.Thread:
    """Run ``work`` on an event loop of its own thread, as another worker process would."""
    thread = threading.Thread(target=lambda: asyncio.run(work()))  # type: ignore[arg-type]
    thread.start()
    return thread


async def _ticks_while(waiting: Awaitable[object]) -> int:
    """How often a 5 ms ticker on this loop ran while ``waiting`` was awaited."""
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        await waiting
    finally:
        ticker.cancel()
    return ticks


async def test_a_writer_waits_for_another_process_writer_without_blocking_its_loop(
    sqlite_url: str,
) -> None:
    """Two stores on one file (as two worker processes have) write one at a time, and the one
    that waits keeps serving its event loop meanwhile."""
    here, there = Database(sqlite_url), Database(sqlite_url)
    await here.write(lambda conn: conn.execute(sa.text("CREATE TABLE spans (who, at)")))
    holding = threading.Event()

    def slow_write(conn: sa.Connection) -> None:
        conn.execute(sa.text("INSERT INTO spans VALUES ('there', 'begin')"))
        holding.set()
        time.sleep(0.3)
        conn.execute(sa.text("INSERT INTO spans VALUES ('there', 'end')"))

    other = _in_another_loop(lambda: there.write(slow_write))
    try:
        assert await asyncio.to_thread(holding.wait, 5)
        insert = sa.text("INSERT INTO spans VALUES ('here', 'write')")
        ticks = await _ticks_while(here.write(lambda conn: conn.execute(insert)))
    finally:
        await asyncio.to_thread(other.join)
    rows = await here.read(lambda conn: conn.execute(sa.text("SELECT * FROM spans")).all())
    await here.dispose()
    await asyncio.to_thread(asyncio.run, there.dispose())
    assert [tuple(r) for r in rows] == [("there", "begin"), ("there", "end"), ("here", "write")]
    assert ticks >= 10  # ~0.3 s of waiting, in 5 ms ticks: the loop was not blocked


async def test_a_write_cancelled_while_waiting_for_the_lock_leaves_it_free(
    sqlite_url: str,
) -> None:
    """A writer cancelled while another process holds the lock leaves nothing behind: its
    waiting thread never keeps the lock, so the next writers, here and elsewhere, are not
    stuck."""
    db = Database(sqlite_url)
    await db.write(lambda conn: conn.execute(sa.text("CREATE TABLE t (x)")))
    other_process = os.open(f"{sqlite_url.split('///', 1)[1]}-writelock", os.O_RDWR)
    fcntl.flock(other_process, fcntl.LOCK_EX)
    try:
        waiting = asyncio.create_task(
            db.write(lambda conn: conn.execute(sa.text("INSERT INTO t VALUES (1)")))
        )
        await asyncio.sleep(0.05)
        waiting.cancel()
        await asyncio.sleep(0.05)
        fcntl.flock(other_process, fcntl.LOCK_UN)
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await asyncio.wait_for(
            db.write(lambda conn: conn.execute(sa.text("INSERT INTO t VALUES (2)"))), 5
        )
        fcntl.flock(other_process, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again
    finally:
        os.close(other_process)
    values = await db.read(lambda conn: conn.execute(sa.text("SELECT x FROM t")).scalars().all())
    await db.dispose()
    assert values == [2]


async def test_a_write_waits_for_a_program_that_locks_the_file_itself(
    sqlite_url: str,
) -> None:
    """A program that is not Cerver (a ``sqlite3`` shell) holding SQLite's own write lock
    delays a write, on the store's thread, and neither fails it nor blocks the loop."""
    db = Database(sqlite_url)
    await db.write(lambda conn: conn.execute(sa.text("CREATE TABLE t (x)")))
    shell = sqlite3.connect(sqlite_url.split("///", 1)[1], isolation_level=None)
    shell.execute("BEGIN IMMEDIATE")
    shell.execute("INSERT INTO t VALUES ('shell')")
    release = asyncio.get_running_loop().call_later(0.3, shell.execute, "COMMIT")
    try:
        write = db.write(lambda conn: conn.execute(sa.text("INSERT INTO t VALUES ('cerver')")))
        ticks = await _ticks_while(write)
    finally:
        release.cancel()
        shell.close()
    values = await db.read(lambda conn: conn.execute(sa.text("SELECT x FROM t")).scalars().all())
    await db.dispose()
    assert values == ["shell", "cerver"]
    assert ticks >= 10


@pytest.mark.parametrize("every", [5, 10_000])
async def test_commits_reach_the_database_file_by_checkpoints_off_the_loop(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, every: int
) -> None:
    """Writes on the loop never checkpoint (a checkpoint syncs the file to disk); every
    ``CHECKPOINT_EVERY`` commits one runs on the store's thread. Until then the rows are in
    the write-ahead log only: the database file alone does not have them."""
    monkeypatch.setattr(_LoopWrites, "CHECKPOINT_EVERY", every)
    db = Database(sqlite_url)
    await db.write(lambda conn: conn.execute(sa.text("CREATE TABLE t (x)")))
    for i in range(12):
        await db.write(lambda conn, i=i: conn.execute(sa.text(f"INSERT INTO t VALUES ({i})")))
    await db.read(lambda conn: None)  # after the checkpoint queued on the store's thread
    path = sqlite_url.split("///", 1)[1]
    file_only = sqlite3.connect(f"file:{path}?immutable=1", uri=True)  # ignores the log
    try:
        in_file = file_only.execute(
            "SELECT count(*) FROM sqlite_master WHERE name = 't'"
        ).fetchone()[0]
    finally:
        file_only.close()
        await db.dispose()
    assert in_file == (1 if every == 5 else 0)


async def test_the_write_ahead_log_starts_over_after_each_checkpoint(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a steady stream of writes the WAL stays the size of the commits between two
    checkpoints: it does not grow by every commit (as it did, 700 MB in 30 s of load, when
    a checkpoint never saw it whole)."""
    monkeypatch.setattr(_LoopWrites, "CHECKPOINT_EVERY", 20)
    db = Database(sqlite_url)
    await db.write(lambda conn: conn.execute(sa.text("CREATE TABLE t (x)")))
    wal = f"{sqlite_url.split('///', 1)[1]}-wal"
    insert = sa.text("INSERT INTO t VALUES (:x)")

    async def write_many(n: int) -> None:
        for i in range(1, n + 1):
            await db.write(lambda conn: conn.execute(insert, {"x": "x" * 3000}))  # ~a page
            if i % 20 == 0:  # a read: it runs after the checkpoint queued on the store's thread
                await db.read(lambda conn: conn.execute(sa.text("SELECT count(*) FROM t")))

    await write_many(40)
    after_40 = _size(wal)
    await write_many(400)
    after_440 = _size(wal)
    count = await db.read(lambda conn: conn.execute(sa.text("SELECT count(*) FROM t")).scalar())
    await db.dispose()
    assert count == 440
    assert after_440 <= after_40 * 1.5, (after_40, after_440)


def _size(path: str) -> int:
    return os.path.getsize(path)


def test_one_store_serves_one_event_loop_after_another(sqlite_url: str) -> None:
    """A thread may run loops one after another (a CLI's ``asyncio.run`` calls) on one store:
    writers queued behind each other in each loop (an ``asyncio.Lock`` belongs to the loop it
    first waited on) still all write."""
    db = Database(sqlite_url)
    other_process = os.open(f"{sqlite_url.split('///', 1)[1]}-writelock", os.O_RDWR | os.O_CREAT)

    async def queued_writes(first: int) -> None:
        fcntl.flock(other_process, fcntl.LOCK_EX)  # every writer below queues
        writes = [
            asyncio.create_task(
                db.write(lambda conn, x=x: conn.execute(sa.text(f"INSERT INTO t VALUES ({x})")))
            )
            for x in (first, first + 1, first + 2)
        ]
        await asyncio.sleep(0.05)
        fcntl.flock(other_process, fcntl.LOCK_UN)
        await asyncio.wait_for(asyncio.gather(*writes), 5)

    try:
        asyncio.run(db.write(lambda conn: conn.execute(sa.text("CREATE TABLE t (x)"))))
        asyncio.run(queued_writes(1))
        asyncio.run(queued_writes(4))
        values = asyncio.run(
            db.read(
                lambda conn: conn.execute(sa.text("SELECT x FROM t ORDER BY x")).scalars().all()
            )
        )
    finally:
        os.close(other_process)
        asyncio.run(db.dispose())
    assert values == [1, 2, 3, 4, 5, 6]
