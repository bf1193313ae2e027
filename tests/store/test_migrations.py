"""The Alembic migrations build exactly the schema the code declares."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from cerver.store import Store
from cerver.store.schema import metadata


async def test_migrated_database_matches_the_declared_schema(store: Store) -> None:
    def diff(conn):
        return compare_metadata(MigrationContext.configure(conn), metadata)

    assert await store.db.read(diff) == []


async def test_migrating_twice_is_a_no_op(store: Store) -> None:
    await store.open()
    await store.open()
