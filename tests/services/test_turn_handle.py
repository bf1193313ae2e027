"""A started turn's live events, as its SSE answer reads them."""

from __future__ import annotations

from cerver.services.turns import TurnHandle
from cerver.store import SessionRecord, StoredEvent


def _handle() -> TurnHandle:
    session = SessionRecord.model_construct(id="sess_1")
    return TurnHandle(session=session, run_id="run_1", harness="anthropic", model="m")


def _event(event_id: int) -> StoredEvent:
    return StoredEvent("sess_1", event_id, "text_delta", f'{{"text": "{event_id}"}}')


async def test_a_reader_that_fell_behind_takes_what_arrived_in_one_batch_in_order() -> None:
    handle = _handle()
    batches = handle.event_batches()
    handle._events.put_nowait(_event(1))
    assert await anext(batches) == [_event(1)]
    for event_id in (2, 3, 4):  # arrived while the reader was writing the first batch
        handle._events.put_nowait(_event(event_id))
    assert await anext(batches) == [_event(2), _event(3), _event(4)]
    handle._events.put_nowait(_event(5))
    handle._events.put_nowait(None)  # the turn's end
    assert [batch async for batch in batches] == [[_event(5)]]


async def test_batches_end_at_the_turns_end_even_when_it_came_first() -> None:
    handle = _handle()
    handle._events.put_nowait(None)
    assert [batch async for batch in handle.event_batches()] == []
