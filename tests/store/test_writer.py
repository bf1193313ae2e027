from __future__ import annotations

import asyncio
import time

import pytest

from cerver.errors import SessionBusy
from cerver.events import EventHub
from cerver.store import SessionWriter, Store
from cerver.store.runs import start_run
from cerver.types import Entry, ToolCallPart, Usage
from tests.store.helpers import make_session


async def _writer(store: Store, session_id: str, run_id: str, hub: EventHub | None = None):
    locked = await store.sessions.try_lock(session_id, run_id, ttl=30, with_transcript=True)
    assert locked is not None
    session, transcript = locked
    return SessionWriter(store.db, hub or EventHub(), session, run_id, transcript=transcript)


async def test_seq_is_gapless_across_lock_holders(store: Store, account_id: str) -> None:
    session = await make_session(store, account_id, user="u1")
    first = await _writer(store, session.id, "run_1")
    await first.append(Entry(role="user", content="hi"))
    await first.append(
        Entry(role="assistant", kind="tool_call", parts=[ToolCallPart(id="c1", name="bash")])
    )
    await first.release()
    second = await _writer(store, session.id, "run_2")
    assert [e.seq for e in second.transcript] == [1, 2]  # read with the lock
    await second.append(Entry(role="assistant", content="done", usage=Usage(input_tokens=3)))
    entries = await store.transcript.entries(session.id)
    assert [e.seq for e in entries] == [1, 2, 3]
    assert entries[1].tool_call.name == "bash"
    assert entries[2].usage == Usage(input_tokens=3, output_tokens=0)


async def test_release_writes_queued_rows_and_frees_the_lock(store: Store, account_id: str) -> None:
    session = await make_session(store, account_id)
    writer = await _writer(store, session.id, "run_1")
    writer.defer(start_run("run_1", session.id, "turn", ttl=30))
    writer.update_session(status="running")
    writer.emit("turn.started", {})
    await writer.release()
    released = await store.sessions.get(account_id, session.id)
    assert (released.status, released.lock_run_id, released.next_event_id) == ("running", None, 2)
    assert (await store.runs.get(session.id, "run_1")).status == "running"
    assert [e.event for e in await store.transcript.events(session.id)] == ["turn.started"]


async def test_events_are_numbered_published_live_and_logged(store: Store, account_id: str) -> None:
    session = await make_session(store, account_id)
    hub = EventHub()
    with hub.subscribe(session.id) as live:
        writer = await _writer(store, session.id, "run_1", hub)
        ids = [writer.emit("text_delta", {"text": t}).id for t in "abc"]
        assert ids == [1, 2, 3]
        assert [live.get_nowait().id for _ in range(3)] == [1, 2, 3]
        assert await store.transcript.events(session.id) == []  # batched until a flush
        await writer.flush()
    logged = await store.transcript.events(session.id, after_id=1)
    assert [(e.id, e.event) for e in logged] == [(2, "text_delta"), (3, "text_delta")]


async def test_ledger_rows_are_written_with_the_next_flush(store: Store, account_id: str) -> None:
    session = await make_session(store, account_id, user="u9")
    writer = await _writer(store, session.id, "run_1")
    writer.charge(
        kind="llm",
        usage=Usage(input_tokens=10, output_tokens=5, cost_usd=0.01),
        run_id="run_1",
        harness="anthropic",
        model="m",
    )
    assert await store.ledger.session_totals(session.id) == []
    await writer.flush()
    totals = await store.ledger.session_totals(session.id)
    assert totals[0]["input_tokens"] == 10 and totals[0]["cost_usd"] == pytest.approx(0.01)


async def test_racing_lockers_get_exactly_one_grant(store: Store, account_id: str) -> None:
    session = await make_session(store, account_id)
    grants = await asyncio.gather(
        *(store.sessions.try_lock(session.id, f"run_{i}", ttl=30) for i in range(5))
    )
    assert sum(g is not None for g in grants) == 1


async def test_a_failed_append_stays_queued_so_seq_stays_gapless(
    store: Store, account_id: str
) -> None:
    session = await make_session(store, account_id)
    writer = await _writer(store, session.id, "run_1")
    await writer.append(Entry(role="user", content="one"))
    real = store.db.write

    async def fail_once(query):
        store.db.write = real
        raise OSError("database is locked")

    store.db.write = fail_once
    with pytest.raises(OSError):
        await writer.append(Entry(role="assistant", content="two"))
    await writer.append(Entry(role="assistant", content="three"))
    await writer.release()
    stored = await store.transcript.entries(session.id)
    assert [(e.seq, e.content) for e in stored] == [(1, "one"), (2, "two"), (3, "three")]


async def test_a_cancelled_write_that_committed_is_not_written_again(
    store: Store, account_id: str
) -> None:
    session = await make_session(store, account_id)
    writer = await _writer(store, session.id, "run_1")
    writer.defer(start_run("run_1", session.id, "turn", ttl=30))
    writer.emit("turn.started", {})
    real = store.db.write

    async def slow(query):
        def slowly(conn):
            time.sleep(0.2)  # on the database thread: the transaction cannot be interrupted
            return query(conn)

        return await real(slowly)

    store.db.write = slow
    task = asyncio.create_task(writer.append(Entry(role="user", content="hi")))
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    store.db.write = real
    await writer.release()  # would fail on duplicate run/event rows if the batch were requeued
    released = await store.sessions.get(account_id, session.id)
    assert released.lock_run_id is None
    assert [e.content for e in await store.transcript.entries(session.id)] == ["hi"]


async def test_a_writer_whose_lease_was_taken_over_writes_nothing(
    store: Store, account_id: str
) -> None:
    session = await make_session(store, account_id)
    stale = await _writer(store, session.id, "run_1")
    await store.sessions.unlock(session.id, "run_1")  # as if its lease expired
    await _writer(store, session.id, "run_2")
    with pytest.raises(SessionBusy):
        await stale.append(Entry(role="user", content="late"))
    assert await store.transcript.entries(session.id) == []


async def test_maybe_flush_writes_in_the_background_in_order(store: Store, account_id: str) -> None:
    session = await make_session(store, account_id)
    locked = await store.sessions.try_lock(session.id, "run_1", ttl=30)
    writer = SessionWriter(store.db, EventHub(), locked[0], "run_1", flush_interval=0)
    for i in range(3):
        writer.emit("text_delta", {"i": i})
    writer.maybe_flush()  # returns at once; the write runs on its own
    assert writer._background is not None
    writer.emit("text_delta", {"i": 3})
    await writer.append(Entry(role="assistant", content="done"))  # waits behind it, in order
    await writer.release()
    logged = await store.transcript.events(session.id)
    assert [e.id for e in logged] == [1, 2, 3, 4]
    assert [e.content for e in await store.transcript.entries(session.id)] == ["done"]


async def test_a_failed_background_flush_keeps_its_rows_for_the_next_write(
    store: Store, account_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = await make_session(store, account_id)
    locked = await store.sessions.try_lock(session.id, "run_1", ttl=30)
    writer = SessionWriter(store.db, EventHub(), locked[0], "run_1", flush_interval=0)
    real_write = store.db.write
    failures = [OSError("database went away")]

    async def flaky(query):
        if failures:
            raise failures.pop()
        return await real_write(query)

    monkeypatch.setattr(store.db, "write", flaky)
    writer.emit("text_delta", {"i": 0})
    writer.maybe_flush()
    await asyncio.wait([writer._background])
    await writer.release()
    assert [e.id for e in await store.transcript.events(session.id)] == [1]


async def test_an_event_after_commit_waits_for_its_row_and_holds_later_events(
    store: Store, account_id: str
) -> None:
    session = await make_session(store, account_id)
    hub = EventHub()
    own: list[int | None] = []
    with hub.subscribe(session.id) as live:
        writer = await _writer(store, session.id, "run_1", hub)
        [stored] = writer.queue([Entry(role="assistant", content="hi")])
        writer.emit(
            "message", {"seq": stored.seq}, to=lambda e: own.append(e.id), after_commit=True
        )
        writer.emit("usage", {}, to=lambda e: own.append(e.id))  # behind the held one
        assert live.empty() and own == []
        await writer.flush()
        assert [live.get_nowait().id for _ in range(2)] == [1, 2] and own == [1, 2]
        writer.emit("turn.completed", {})  # nothing held any more: published at once
        assert live.get_nowait().id == 3
        await writer.release()
    assert [e.content for e in await store.transcript.entries(session.id)] == ["hi"]


async def test_write_soon_then_release_is_one_transaction(store: Store, account_id: str) -> None:
    """A turn's last message and its end: when the turn ends before the background write
    began, the release writes both, and the background write finds nothing left."""
    session = await make_session(store, account_id)
    hub = EventHub()
    with hub.subscribe(session.id) as live:
        writer = await _writer(store, session.id, "run_1", hub)
        writes = 0
        write = store.db.write

        async def counted(query):  # type: ignore[no-untyped-def]
            nonlocal writes
            writes += 1
            return await write(query)

        store.db.write = counted  # type: ignore[method-assign]
        [stored] = writer.queue([Entry(role="assistant", content="last")])
        writer.write_soon()
        writer.emit("message", {"seq": stored.seq}, after_commit=True)
        writer.defer(start_run("run_1", session.id, "turn", ttl=30))
        writer.update_session(status="ready")
        # As the lock releases it: in a task of its own, which starts after the background
        # write's task (created first); that one must find nothing left to write.
        await asyncio.shield(writer.release())
        await asyncio.sleep(0.05)
        assert writes == 1
        assert live.get_nowait().event == "message"
    released = await store.sessions.get(account_id, session.id)
    assert (released.status, released.lock_run_id, released.next_seq) == ("ready", None, 2)
    assert [e.content for e in await store.transcript.entries(session.id)] == ["last"]


async def test_write_soon_writes_in_the_background_and_then_publishes(
    store: Store, account_id: str
) -> None:
    session = await make_session(store, account_id)
    hub = EventHub()
    with hub.subscribe(session.id) as live:
        writer = await _writer(store, session.id, "run_1", hub)
        [stored] = writer.queue([Entry(role="assistant", kind="tool_call", content="")])
        writer.write_soon()
        writer.emit("tool_call", {"seq": stored.seq}, after_commit=True)
        event = await asyncio.wait_for(live.get(), 10)  # the holder goes on meanwhile
        assert event.event == "tool_call"
        assert [e.seq for e in await store.transcript.entries(session.id)] == [1]
        await writer.release()


async def test_a_failed_release_drops_the_events_of_rows_it_did_not_write(
    store: Store, account_id: str
) -> None:
    session = await make_session(store, account_id)
    hub = EventHub()
    with hub.subscribe(session.id) as live:
        writer = await _writer(store, session.id, "run_1", hub)
        # Another run took the lock over (its lease expired): the release writes nothing.
        await store.sessions.unlock(session.id, "run_1")
        assert await store.sessions.try_lock(session.id, "run_2", ttl=30) is not None
        [stored] = writer.queue([Entry(role="assistant", content="lost")])
        writer.emit("message", {"seq": stored.seq}, after_commit=True)
        writer.emit("turn.completed", {})
        with pytest.raises(SessionBusy):
            await writer.release()
        assert [live.get_nowait().event] == ["turn.completed"] and live.empty()
    assert await store.transcript.entries(session.id) == []


async def test_a_failed_background_write_keeps_its_rows_and_is_raised_at_the_next_message(
    store: Store, account_id: str
) -> None:
    session = await make_session(store, account_id)
    writer = await _writer(store, session.id, "run_1")
    write = store.db.write

    async def failing(query):  # type: ignore[no-untyped-def]
        raise OSError("disk gone")

    store.db.write = failing  # type: ignore[method-assign]
    writer.queue([Entry(role="assistant", kind="tool_call", content="")])
    writer.write_soon()
    await asyncio.sleep(0.05)  # the background write fails; its row goes back in the queue
    store.db.write = write  # type: ignore[method-assign]
    writer.queue([Entry(role="tool", kind="tool_result", content="ok")])
    with pytest.raises(OSError, match="disk gone"):
        writer.write_soon()
    await writer.release()  # nothing was lost: both rows, in order
    assert [e.seq for e in await store.transcript.entries(session.id)] == [1, 2]
