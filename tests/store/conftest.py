from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cerver.store import Store


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A migrated store, on SQLite and on PostgreSQL (the store conformance suite)."""
    s = Store(database_url)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def account_id(store: Store) -> str:
    account, _ = await store.accounts.create("acme")
    return account.id
