from __future__ import annotations

import pytest

from cerver.errors import InvalidRequest, NotFound
from cerver.store import SessionFilters, Store
from tests.store.helpers import make_session


async def test_get_is_scoped_to_the_account(store: Store, account_id: str) -> None:
    other, _ = await store.accounts.create("other")
    session = await make_session(store, account_id)
    assert (await store.sessions.get(account_id, session.id)).id == session.id
    with pytest.raises(NotFound) as theirs:
        await store.sessions.get(other.id, session.id)
    with pytest.raises(NotFound) as missing:
        await store.sessions.get(other.id, "sess_missing")
    assert str(theirs.value).replace(session.id, "X") == str(missing.value).replace(
        "sess_missing", "X"
    )


async def test_list_filters_and_paginates_newest_first(store: Store, account_id: str) -> None:
    created = [
        await make_session(store, account_id, user="u1" if i % 2 else "u2", task=f"task {i}")
        for i in range(7)
    ]
    page, cursor = await store.sessions.list(account_id, SessionFilters(), limit=3, cursor=None)
    seen = [s.id for s in page]
    while cursor:
        page, cursor = await store.sessions.list(
            account_id, SessionFilters(), limit=3, cursor=cursor
        )
        seen += [s.id for s in page]
    assert seen == [s.id for s in reversed(created)]

    u1, _ = await store.sessions.list(account_id, SessionFilters(user="u1"), limit=50, cursor=None)
    assert {s.user for s in u1} == {"u1"} and len(u1) == 3
    found, _ = await store.sessions.list(
        account_id, SessionFilters(q="TASK 4"), limit=50, cursor=None
    )
    assert [s.task for s in found] == ["task 4"]


async def test_bad_cursor_is_an_invalid_request(store: Store, account_id: str) -> None:
    with pytest.raises(InvalidRequest):
        await store.sessions.list(account_id, SessionFilters(), limit=5, cursor="%%%")


async def test_turn_lock_is_exclusive_until_released_or_expired(
    store: Store, account_id: str
) -> None:
    session = await make_session(store, account_id)
    locked = await store.sessions.try_lock(session.id, "run_a", ttl=30)
    assert locked is not None
    assert (locked[0].next_seq, locked[0].lock_run_id) == (1, "run_a")
    assert await store.sessions.try_lock(session.id, "run_b", ttl=30) is None
    await store.sessions.unlock(session.id, "run_b")  # not the holder: no effect
    assert await store.sessions.try_lock(session.id, "run_b", ttl=30) is None
    await store.sessions.unlock(session.id, "run_a")
    assert await store.sessions.try_lock(session.id, "run_b", ttl=-1) is not None
    # An expired lease can be taken over.
    assert await store.sessions.try_lock(session.id, "run_c", ttl=30) is not None


async def test_turn_lock_of_a_deleted_session_is_not_found_not_busy(
    store: Store, account_id: str
) -> None:
    session = await make_session(store, account_id)
    assert await store.sessions.try_lock(session.id, "run_a", ttl=30) is not None
    assert await store.sessions.try_lock(session.id, "run_b", ttl=30) is None  # busy
    await store.sessions.delete(session.id)
    with pytest.raises(NotFound, match="deleted"):
        await store.sessions.try_lock(session.id, "run_b", ttl=30)


async def test_record_exec_counts_in_one_update(store: Store, account_id: str) -> None:
    session = await make_session(store, account_id)
    await store.sessions.record_exec(session.id, 10.0)
    await store.sessions.record_exec(session.id, 30.0)
    await store.sessions.record_exec(session.id, 5.0, stream_open_ms=2.0)
    s = await store.sessions.get(account_id, session.id)
    assert (s.exec_count, s.exec_total_ms, s.last_exec_ms) == (2, 40.0, 30.0)
    assert (s.stream_count, s.stream_open_total_ms) == (1, 2.0)
    assert s.first_exec_at is not None
