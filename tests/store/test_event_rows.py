"""Series rows: consecutive deltas share a row of the event log, and read back one by one."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from cerver.events import EventHub
from cerver.store import SessionWriter, Store, StoredEvent
from cerver.store.database import _MIGRATIONS
from cerver.store.event_rows import events_of, queue_event, seal
from cerver.store.schema import events
from tests.store.helpers import make_session


def _event(id: int, name: str = "text_delta", data: str = '{"text":"x"}') -> StoredEvent:
    return StoredEvent("sess_1", id, name, data)


def test_consecutive_deltas_share_a_row_and_other_events_break_the_series() -> None:
    rows: list[dict] = []
    for event in [
        _event(1, "turn.started", "{}"),
        _event(2, data='{"text":"a"}'),
        _event(3, data='{"text":"b\\nc"}'),  # an escaped newline stays inside its JSON
        _event(4, "message", "{}"),
        _event(5, data='{"text":"d"}'),
    ]:
        queue_event(rows, event)
    sealed = seal(rows)
    assert [(r["id"], r["last_id"], r["event"]) for r in sealed] == [
        (1, None, "turn.started"),
        (2, 3, "text_delta"),
        (4, None, "message"),
        (5, None, "text_delta"),
    ]
    assert sealed[1]["data"] == '{"text":"a"}\n{"text":"b\\nc"}'
    assert sealed[3]["data"] == '{"text":"d"}'


def test_a_sealed_row_put_back_is_never_extended() -> None:
    rows: list[dict] = []
    queue_event(rows, _event(1))
    requeued = seal(rows)  # as a failed write puts its rows back
    queue_event(requeued, _event(2))
    assert [(r["id"], r["last_id"]) for r in seal(requeued)] == [(1, None), (2, None)]


@pytest.mark.parametrize("after_id", range(6))
def test_events_of_expands_series_and_skips_what_the_reader_has(after_id: int) -> None:
    rows: list[dict] = []
    originals = [_event(1, "turn.started", "{}")]
    originals += [_event(i, data=f'{{"text":"{i}"}}') for i in range(2, 5)]
    originals.append(_event(5, "turn.completed", "{}"))
    for event in originals:
        queue_event(rows, event)
    stored = [SimpleNamespace(**row) for row in seal(rows)]
    assert events_of(stored, after_id=after_id) == originals[after_id:]


async def _writer(store: Store, session_id: str) -> SessionWriter:
    locked = await store.sessions.try_lock(session_id, "run_1", ttl=30)
    assert locked is not None
    return SessionWriter(store.db, EventHub(), locked[0], "run_1")


async def test_the_log_reads_every_event_back_from_any_id(store: Store, account_id: str) -> None:
    session = await make_session(store, account_id)
    writer = await _writer(store, session.id)
    emitted = [writer.emit("turn.started", {"run_id": "run_1"})]
    emitted += [writer.emit("text_delta", {"text": f"{i}\n"}) for i in range(40)]
    await writer.flush()  # a second write: its deltas start a new series
    emitted += [writer.emit("text_delta", {"text": f"{i}"}) for i in range(40, 60)]
    emitted.append(writer.emit("turn.completed", {"run_id": "run_1"}))
    await writer.release()

    rows = await store.db.read(
        lambda conn: conn.execute(
            sa.select(events.c.id, events.c.last_id).where(events.c.session_id == session.id)
        ).all()
    )
    assert sorted(tuple(r) for r in rows) == [(1, None), (2, 41), (42, 61), (62, None)]
    for after_id in (0, 1, 2, 20, 41, 42, 50, 61, 62):
        logged = await store.transcript.events(session.id, after_id=after_id)
        assert logged == emitted[after_id:], after_id
    # Pages count rows: the second starts inside the series the first one ended in.
    first = await store.transcript.events(session.id, limit=2)
    assert first == emitted[:41]
    assert await store.transcript.events(session.id, after_id=30, limit=1) == emitted[30:41]
    # A row that ends where the reader is does not take a place in the page.
    assert await store.transcript.events(session.id, after_id=1, limit=1) == emitted[1:41]
    assert await store.transcript.events(session.id, after_id=41, limit=1) == emitted[41:61]
    assert await store.transcript.run_start(session.id, "run_1") == (1, 62)


async def test_downgrading_writes_each_series_out_one_event_per_row(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    await store.open()
    account, _ = await store.accounts.create("acme")
    session = await make_session(store, account.id)
    writer = await _writer(store, session.id)
    emitted = [writer.emit("text_delta", {"text": t}) for t in "abc"]
    emitted.append(writer.emit("turn.completed", {}))
    await writer.release()

    def downgrade(conn: sa.Connection) -> list[tuple]:
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        config.attributes["connection"] = conn
        command.downgrade(config, "0010")
        query = sa.text("SELECT id, event, data FROM events WHERE session_id = :s ORDER BY id")
        return [tuple(r) for r in conn.execute(query, {"s": session.id})]

    rows = await store.db.write(downgrade)
    await store.close()
    assert rows == [(e.id, e.event, e.data) for e in emitted]
