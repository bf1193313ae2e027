"""The database backends: what a URL gets."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import sqlalchemy as sa

from cerver.store import Database, Store


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


async def test_a_sqlite_file_runs_reads_and_writes_on_one_thread_and_connection_each(
    sqlite_url: str,
) -> None:
    """One store thread (a second one for reads cost a turn 12-15 % more CPU in GIL hand-offs),
    with reads on their own connection, so they never take the write lock."""
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
    assert len({thread for _, thread, _ in seen}) == 1
    connections = {kind: {conn for k, _, conn in seen if k == kind} for kind in ("read", "write")}
    assert len(connections["read"]) == len(connections["write"]) == 1
    assert connections["read"] != connections["write"]
