"""``cerver.services.event_log``: a session's log replayed then followed, and one run's slice
of it read by a reader that attaches before, during or after the run (mock upstream, a test
double, answers the turns)."""

from __future__ import annotations

import asyncio

import orjson

from cerver.gateway import Gateway
from cerver.services import event_log
from cerver.services.sessions import ComputeChoice, HarnessChoice
from cerver.services.turns import TurnRequest
from cerver.store import StoredEvent
from cerver.testing.mock_upstream import MockUpstream, Reply
from tests.conftest import ADMIN_KEY


async def _session(gateway: Gateway) -> tuple[str, str]:
    """(account id, id of a new session without compute) for the admin key."""
    account = await gateway.auth.authenticate(f"Bearer {ADMIN_KEY}")
    session = await gateway.sessions.create(
        account.id, harness=HarnessChoice(), compute=ComputeChoice(mode="none")
    )
    return account.id, session.id


async def _read(gateway: Gateway, session_id: str, run_id: str) -> list[StoredEvent]:
    events = event_log.run_events(
        gateway.store,
        gateway.hub,
        session_id,
        run_id,
        queued=lambda: gateway.turns.running(run_id) is not None,
        idle_seconds=0.05,
    )
    return [event async for event in events]


def _run_of(event: StoredEvent) -> str | None:
    return orjson.loads(event.data).get("run_id")


async def test_a_run_read_before_it_starts_during_and_after_gives_the_same_events(
    gateway: Gateway, mock_upstream: MockUpstream
) -> None:
    account, sid = await _session(gateway)
    mock_upstream.script(
        Reply(text="first turn, slowly", chunk_delay_ms=40), Reply(text="second", chunk_delay_ms=20)
    )
    first = await gateway.turns.start(account, sid, TurnRequest(input="one"))
    await asyncio.sleep(0.05)
    # Queued behind the first turn: nothing of it is logged yet.
    second = await gateway.turns.start(account, sid, TurnRequest(input="two"))
    early = asyncio.create_task(_read(gateway, sid, second.run_id))
    during = asyncio.create_task(_read(gateway, sid, first.run_id))
    await second.wait()
    after = await _read(gateway, sid, second.run_id)

    seen_early = await asyncio.wait_for(early, 10)
    assert [e.id for e in seen_early] == [e.id for e in after]
    assert seen_early[0].event == "turn.started" and _run_of(seen_early[0]) == second.run_id
    assert seen_early[-1].event == "turn.completed" and _run_of(seen_early[-1]) == second.run_id
    deltas = [orjson.loads(e.data)["text"] for e in after if e.event == "text_delta"]
    assert "".join(deltas) == "second"

    seen_during = await asyncio.wait_for(during, 10)
    assert [e.id for e in seen_during] == [e.id for e in await _read(gateway, sid, first.run_id)]
    assert _run_of(seen_during[0]) == _run_of(seen_during[-1]) == first.run_id
    ids = [e.id for e in seen_during]
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # contiguous: nothing lost
    assert max(ids) < seen_early[0].id  # and nothing of the next run


async def test_tail_replays_past_a_given_id_then_follows(gateway: Gateway) -> None:
    account, sid = await _session(gateway)
    turn = await gateway.turns.start(account, sid, TurnRequest(input="hello"))
    await turn.wait()
    logged = await gateway.store.transcript.events(sid)
    replayed = [
        e
        async for e in event_log.tail(
            gateway.store, gateway.hub, sid, after=logged[1].id or 0, follow=False
        )
    ]
    assert [e.id for e in replayed] == [e.id for e in logged[2:]]
