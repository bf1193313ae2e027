"""The database backends: what a URL gets."""

from __future__ import annotations

import asyncio

from cerver.store import Store


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
