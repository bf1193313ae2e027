"""Run records: leases reaped once by whichever process looks first, cancel requests."""

from __future__ import annotations

import asyncio

import orjson

from cerver.events import EventHub
from cerver.store import SessionWriter, Store
from cerver.types import Entry
from tests.store.helpers import make_session


async def _dead_run(store: Store, account_id: str, run_id: str = "run_dead"):
    """A session whose turn lock is held by a run whose process stopped renewing it."""
    session = await make_session(store, account_id, status="running")
    locked = await store.sessions.try_lock(session.id, run_id, ttl=-1)
    assert locked is not None
    writer = SessionWriter(store.db, EventHub(), locked[0], run_id)
    await writer.append(Entry(role="user", content="hi"))
    writer.emit("turn.started", {"run_id": run_id})
    await writer.flush()
    await store.runs.start(run_id, session.id, "turn", ttl=-1, harness="anthropic", model="m")
    return session


async def test_an_expired_run_is_interrupted_and_its_session_freed_with_a_terminal_event(
    store: Store, account_id: str
) -> None:
    session = await _dead_run(store, account_id)
    written = await store.runs.reclaim_expired()
    assert [(e.id, e.event) for e in written] == [(2, "error"), (3, "turn.completed")]
    completed = orjson.loads(written[1].data)
    assert completed["status"] == "interrupted" and completed["error"]["code"] == "interrupted"
    run = await store.runs.get(session.id, "run_dead")
    assert run.status == "interrupted" and run.ended_at is not None
    assert [e.event for e in await store.transcript.events(session.id)] == [
        "turn.started",
        "error",
        "turn.completed",
    ]
    entries = await store.transcript.entries(session.id)
    assert [(e.seq, e.role, e.kind) for e in entries] == [
        (1, "user", "text"),
        (2, "event", "error"),
    ]
    freed = await store.sessions.get(account_id, session.id)
    assert freed.status == "ready" and freed.lock_run_id is None
    assert await store.sessions.try_lock(session.id, "run_next", ttl=30) is not None


async def test_two_reapers_at_once_end_a_run_exactly_once(store: Store, account_id: str) -> None:
    session = await _dead_run(store, account_id)
    results = await asyncio.gather(*(store.runs.reclaim_expired() for _ in range(4)))
    assert sorted(len(r) for r in results) == [0, 0, 0, 2]
    assert len(await store.transcript.events(session.id)) == 3


async def test_taking_over_an_expired_lock_records_the_dead_runs_end(
    store: Store, account_id: str
) -> None:
    session = await _dead_run(store, account_id)
    # No reaper ran: the next turn finds the expired lock and records the dead run's end.
    locked = await store.sessions.try_lock(session.id, "run_next", ttl=30)
    assert locked is not None
    assert locked[0].next_event_id == 4 and locked[0].next_seq == 3
    assert (await store.runs.get(session.id, "run_dead")).status == "interrupted"
    assert await store.runs.reclaim_expired() == []


async def test_a_live_run_is_not_reaped(store: Store, account_id: str) -> None:
    session = await make_session(store, account_id)
    await store.runs.start("run_live", session.id, "turn", ttl=30)
    assert await store.runs.reclaim_expired() == []
    assert (await store.runs.get(session.id, "run_live")).status == "running"


async def test_cancel_requests_flag_running_runs_only(store: Store, account_id: str) -> None:
    session = await make_session(store, account_id)
    await store.runs.start("run_a", session.id, "turn", ttl=30)
    await store.runs.start("run_b", session.id, "turn", ttl=30)
    await store.runs.finish("run_b", "completed")
    assert await store.runs.request_cancel(session.id, "run_b") == []
    assert await store.runs.request_cancel(session.id) == ["run_a"]
    flagged = await store.runs.cancel_requests(["run_a", "run_b"])
    assert [r.id for r in flagged] == ["run_a"]
    listed = await store.runs.list(session.id)
    assert {r.id for r in listed} == {"run_a", "run_b"}
    assert [r.id for r in await store.runs.list(session.id, status="running")] == ["run_a"]
