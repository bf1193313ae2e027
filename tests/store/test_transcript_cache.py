"""The transcript cache: a turn's lock reads only the entries it has not seen, and none twice."""

from __future__ import annotations

import pytest

from cerver.events import EventHub
from cerver.services.locks import SessionLocks
from cerver.store import SessionWriter, Store
from cerver.store import sessions as sessions_module
from cerver.store.records import entry_from_row
from cerver.store.transcript_cache import TranscriptCache
from cerver.types import Entry, ToolCallPart, Usage
from tests.store.helpers import make_session


async def _writer(store: Store, session_id: str, run_id: str) -> SessionWriter:
    locked = await store.sessions.try_lock(session_id, run_id, ttl=30, with_transcript=True)
    assert locked is not None
    session, transcript = locked
    return SessionWriter(store.db, EventHub(), session, run_id, transcript=transcript)


@pytest.fixture
def converted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The ``seq`` of every entry row the turn lock reads back, in order."""
    seqs: list[int] = []

    def counting(row):
        seqs.append(row.seq)
        return entry_from_row(row)

    monkeypatch.setattr(sessions_module, "entry_from_row", counting)
    return seqs


def _entries(*seqs: int) -> list[Entry]:
    return [Entry(seq=seq, role="user", content=f"m{seq}") for seq in seqs]


def test_extend_appends_to_the_cached_prefix_and_hands_out_copies() -> None:
    cache = TranscriptCache()
    first = cache.extend("s", _entries(1, 2))
    first.append(Entry(seq=99, role="user"))  # a caller's own list, not the cache
    assert [e.seq for e in cache.extend("s", _entries(3))] == [1, 2, 3]
    assert cache.last_seq("s") == 3 and cache.last_seq("other") == 0


def test_least_recently_used_sessions_are_dropped_past_the_bounds() -> None:
    cache = TranscriptCache(max_sessions=2, max_entries=5)
    cache.extend("a", _entries(1))
    cache.extend("b", _entries(1))
    cache.extend("a", [])  # touched: now the most recent
    cache.extend("c", _entries(1))
    assert (cache.last_seq("a"), cache.last_seq("b"), cache.last_seq("c")) == (1, 0, 1)
    cache.extend("d", _entries(1, 2, 3, 4, 5))
    assert cache.last_seq("d") == 5 and cache.last_seq("a") == 0 and cache.last_seq("c") == 0


async def test_the_lock_reads_only_rows_it_has_not_seen(
    store: Store, database_url: str, account_id: str, converted: list[int]
) -> None:
    session = await make_session(store, account_id)
    writer = await _writer(store, session.id, "run_1")
    await writer.append(Entry(role="user", content="hello"))
    await writer.release()
    # Another gateway process (its own store, its own cache) appends behind this one's back.
    other = Store(database_url)
    await other.open()
    try:
        writer = await _writer(other, session.id, "run_2")
        assert [e.content for e in writer.transcript] == ["hello"]
        await writer.append(Entry(role="assistant", content="there"))
        await writer.release()
    finally:
        await other.close()
    converted.clear()

    writer = await _writer(store, session.id, "run_3")
    assert [e.content for e in writer.transcript] == ["hello", "there"]
    await writer.release()
    writer = await _writer(store, session.id, "run_4")
    assert [e.content for e in writer.transcript] == ["hello", "there"]
    await writer.release()
    assert converted == [1, 2]  # run_3 read both rows once; run_4 read none


def test_committed_entries_are_kept_only_where_they_follow_the_cached_prefix() -> None:
    cache = TranscriptCache()
    cache.append_committed("new", _entries(1, 2))  # a new session: nothing cached is seq 0
    cache.append_committed("s", _entries(3))  # rows 1 and 2 were never seen: a gap
    assert cache.last_seq("new") == 2 and cache.last_seq("s") == 0
    cache.extend("s", _entries(1, 2))
    cache.append_committed("s", _entries(4))  # row 3 (another process's) is missing
    cache.append_committed("s", _entries(3, 4))
    assert [e.seq for e in cache.extend("s", [])] == [1, 2, 3, 4]


async def test_a_turns_own_rows_are_cached_as_a_read_would_return_them(
    store: Store, account_id: str, converted: list[int]
) -> None:
    """The lock after a turn of this process reads nothing, and the transcript it hands over is
    the stored one: cost cleared, NUL replaced, parts as the store returns them."""
    session = await make_session(store, account_id)
    cache = store.sessions.transcript_cache
    for run_id in ("run_1", "run_2"):
        locked = await store.sessions.try_lock(session.id, run_id, ttl=30, with_transcript=True)
        assert locked is not None
        writer = SessionWriter(store.db, EventHub(), locked[0], run_id, transcripts=cache)
        await writer.append(Entry(role="user", content=f"{run_id}\x00"))
        call = ToolCallPart(id="c1", name="run", arguments={"code": "ls"})
        writer.queue(
            [
                Entry(role="assistant", kind="tool_call", parts=[call]),
                Entry(role="assistant", content="done", usage=Usage(output_tokens=3)),
            ]
        )
        await writer.release()
    writer = await _writer(store, session.id, "run_3")
    await writer.release()
    assert converted == []
    assert writer.transcript == await store.transcript.entries(session.id)
    assert [e.content for e in writer.transcript][::3] == ["run_1\ufffd", "run_2\ufffd"]


async def test_rows_written_with_the_lock_are_cached_once_it_commits(
    store: Store, account_id: str, converted: list[int]
) -> None:
    session = await make_session(store, account_id)
    locks = SessionLocks(store, EventHub())
    for turn in range(1, 4):

        def opening(writer: SessionWriter, turn: int = turn) -> None:
            writer.queue([Entry(role="user", content=f"question {turn}")])

        run_id = f"run_{turn}"
        async with locks.hold(session.id, run_id, with_transcript=True, opening=opening) as w:
            assert [e.content for e in w.transcript] == [f"question {n}" for n in range(1, turn)]
    assert converted == []
