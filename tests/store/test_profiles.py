"""Learned provider profiles (EWMA) and registered computes, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from cerver.store import Store
from cerver.store.profiles import ALPHA


@pytest.fixture
async def store(database_url: str):
    store = Store(database_url)
    await store.open()
    yield store
    await store.close()


async def test_ewma_folds_observations(store: Store) -> None:
    await store.profiles.observe("local", startup_ms=100)
    await store.profiles.observe("local", startup_ms=200)
    await store.profiles.observe("local", exec_ms=10)
    await store.profiles.observe("local", ok=False)

    local = (await store.profiles.all())["local"]
    assert local.startup_ms == pytest.approx(100 * (1 - ALPHA) + 200 * ALPHA)
    assert local.exec_ms == 10
    assert (local.provisions, local.execs, local.failures) == (2, 1, 1)
    assert local.reliability == pytest.approx(1 - ALPHA)


async def test_concurrent_first_observations_lose_nothing(store: Store) -> None:
    await asyncio.gather(*(store.profiles.observe("e2b", startup_ms=50) for _ in range(10)))

    assert (await store.profiles.all())["e2b"].provisions == 10
