"""A turn and the session around it: close, pause, lock renewal, refusals while waiting."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

import httpx
import pytest

from cerver.api import create_app
from cerver.gateway import Gateway
from cerver.services.turns import TurnRequest
from cerver.testing.mock_upstream import MockUpstream, Reply
from tests.conftest import ADMIN_KEY, make_settings


async def test_close_cancels_the_running_turn_and_queued_turns_are_refused(
    http: httpx.AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid = (await http.post("/v2/sessions", json={"compute": None})).json()["session_id"]
    mock_upstream.script(Reply(text="slow A", delay_ms=30_000), Reply(text="B"))
    a = asyncio.create_task(http.post(f"/v2/sessions/{sid}/run-llm", json={"input": "A"}))
    await asyncio.sleep(0.3)
    b = asyncio.create_task(http.post(f"/v2/sessions/{sid}/run-llm", json={"input": "B"}))
    await asyncio.sleep(0.1)
    closed = await asyncio.wait_for(http.post(f"/v2/sessions/{sid}/close"), 10)
    assert closed.json()["status"] == "closed"
    first, second = await asyncio.gather(a, b)
    # A did not hold the close up for its 30 s upstream wait: it was cancelled.
    assert first.status_code == 200 and first.json()["status"] == "cancelled"
    assert second.json()["status"] == "cancelled" or second.json()["code"] == "session_closed"
    session = (await http.get(f"/v2/sessions/{sid}")).json()
    assert session["status"] == "closed" and session["closed_at"]
    contents = [
        m["content"] for m in (await http.get(f"/v2/sessions/{sid}/messages")).json()["messages"]
    ]
    assert contents == ["A"]
    [run] = (await http.get(f"/v2/sessions/{sid}/runs")).json()["runs"]
    assert run["status"] == "cancelled" and run["cancel_requested_at"]


async def test_a_turn_waiting_for_a_session_deleted_meanwhile_ends_not_found(
    http: httpx.AsyncClient, gateway: Gateway, mock_upstream: MockUpstream
) -> None:
    """Deleted by another replica (or between the delete's cancel and its row delete): the
    waiting turn learns it from the lock, at once, instead of waiting out its timeout."""
    sid = (await http.post("/v2/sessions", json={"compute": None})).json()["session_id"]
    mock_upstream.script(Reply(text="slow A", delay_ms=1000))
    a = asyncio.create_task(http.post(f"/v2/sessions/{sid}/run-llm", json={"input": "A"}))
    await asyncio.sleep(0.3)
    b = asyncio.create_task(http.post(f"/v2/sessions/{sid}/run-llm", json={"input": "B"}))
    await asyncio.sleep(0.1)
    await gateway.store.sessions.delete(sid)  # the row only: nobody cancelled B
    waited = await asyncio.wait_for(b, 10)
    assert waited.status_code == 404 and "deleted" in waited.json()["detail"]
    await a


async def test_deleting_a_session_drops_its_cached_transcript(
    http: httpx.AsyncClient, gateway: Gateway
) -> None:
    """Found by ``bench.soak``: deleted sessions stayed in the transcript cache, so RSS grew
    with every session a gateway ever served (up to the cache's bound)."""
    sid = (await http.post("/v2/sessions", json={"compute": None})).json()["session_id"]
    await http.post(f"/v2/sessions/{sid}/run-llm", json={"input": "hello"})
    await http.post(f"/v2/sessions/{sid}/run-llm", json={"input": "again"})  # reads the cache
    cache = gateway.store.sessions.transcript_cache
    assert cache.last_seq(sid) > 0
    assert (await http.delete(f"/v2/sessions/{sid}")).status_code == 204
    assert cache.last_seq(sid) == 0


@pytest.mark.parametrize("wait", [True, False], ids=["enqueue", "reject"])
async def test_a_turn_stopped_before_its_task_began_still_ends(
    http: httpx.AsyncClient, gateway: Gateway, wait: bool
) -> None:
    """Found by ``bench.soak``: a session deleted right after a streamed turn started had the
    turn's task cancelled before it first ran. The task never ran its ending: the stream
    waited forever (and with ``multitask: "reject"`` the lock it held was never released)."""
    account = await gateway.auth.authenticate(f"Bearer {ADMIN_KEY}")
    sid = (await http.post("/v2/sessions", json={"compute": None})).json()["session_id"]
    handle = await gateway.turns.start(account.id, sid, TurnRequest(input="hi", wait=wait))
    handle.cancel()

    async with asyncio.timeout(10):
        events = [event.event async for event in handle.events()]
        result = await handle.result()

    assert events == ["error"] and result.status == "cancelled"
    again = await http.post(
        f"/v2/sessions/{sid}/run-llm", json={"input": "next", "multitask": "reject"}
    )
    assert again.status_code == 200 and again.json()["status"] == "completed"


async def test_deleting_a_session_drops_its_cached_replay(
    http: httpx.AsyncClient, gateway: Gateway
) -> None:
    """Found by ``bench.soak``: the harness's replay checkpoint of a deleted session kept its
    transcript alive (RSS +16 % in 4 minutes of sessions created and deleted)."""
    sid = (await http.post("/v2/sessions", json={"compute": None})).json()["session_id"]
    await http.post(f"/v2/sessions/{sid}/run-llm", json={"input": "hello"})
    await http.post(f"/v2/sessions/{sid}/run-llm", json={"input": "again"})
    replays = gateway.harnesses.get("anthropic")._replays
    assert sid in replays
    assert (await http.delete(f"/v2/sessions/{sid}")).status_code == 204
    assert sid not in replays


async def test_a_paused_session_refuses_turns_and_keeps_its_snapshot(
    http: httpx.AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid = (await http.post("/v2/sessions", json={"compute": {"provider": "local"}})).json()[
        "session_id"
    ]
    await http.post(f"/v2/sessions/{sid}/run", json={"code": "echo keep > keep.txt"})
    assert (await http.post(f"/v2/sessions/{sid}/pause")).status_code == 200
    refused = await http.post(f"/v2/sessions/{sid}/run-llm", json={"input": "hello"})
    assert refused.status_code == 409 and "paused" in refused.json()["detail"]
    assert mock_upstream.requests == []
    assert (await http.post(f"/v2/sessions/{sid}/resume", json={})).status_code == 200
    kept = await http.post(f"/v2/sessions/{sid}/run", json={"code": "cat keep.txt"})
    assert kept.json()["result"]["stdout"] == "keep\n"


async def test_a_failed_lease_renewal_does_not_lose_the_lock(
    tmp_path: Path, sqlite_url: str, mock_upstream: MockUpstream
) -> None:
    # Renewals tick every lease/3: the failed one at 0.5 s, the good one at 1.0 s, which must
    # land before the lease ends at 1.5 s even on a loaded CI machine.
    gateway = Gateway(make_settings(tmp_path, sqlite_url, mock_upstream, run_lease_seconds=1.5))
    await gateway.start()
    real = gateway.store.sessions.renew_lock
    failures = iter([True])

    async def flaky(*args, **kwargs):
        if next(failures, False):
            raise OSError("transient: database is locked")
        return await real(*args, **kwargs)

    gateway.store.sessions.renew_lock = flaky
    transport = httpx.ASGITransport(app=create_app(gateway))
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers=headers
        ) as http:
            sid = (await http.post("/v2/sessions", json={"compute": None})).json()["session_id"]
            mock_upstream.script(Reply(text="slow A", delay_ms=3000), Reply(text="B"))
            a = asyncio.create_task(http.post(f"/v2/sessions/{sid}/run-llm", json={"input": "A"}))
            await asyncio.sleep(2.0)  # past the lease: only renewals keep A's lock
            b = await http.post(
                f"/v2/sessions/{sid}/run-llm", json={"input": "B", "multitask": "reject"}
            )
            assert b.status_code == 409
            assert (await a).json()["status"] == "completed"
    finally:
        await gateway.stop()


async def test_a_streamed_turn_refused_while_waiting_ends_with_an_error_event(
    http: httpx.AsyncClient, gateway: Gateway, mock_upstream: MockUpstream
) -> None:
    gateway.locks.hold = functools.partial(gateway.locks.hold, timeout=0.3)
    sid = (await http.post("/v2/sessions", json={"compute": None})).json()["session_id"]
    mock_upstream.script(Reply(text="slow A", delay_ms=1200), Reply(text="B"))
    a = asyncio.create_task(http.post(f"/v2/sessions/{sid}/run-llm", json={"input": "A"}))
    await asyncio.sleep(0.1)
    b = await http.post(f"/v2/sessions/{sid}/run-llm", json={"input": "B", "stream": True})
    await a
    assert "event: error" in b.text and "session_busy" in b.text
    assert "id: " not in b.text  # nothing was logged, so there is nothing to resume from


async def test_a_turn_starts_in_one_transaction_and_streams_its_own_events_first(
    gateway: Gateway, http: httpx.AsyncClient, mock_upstream: MockUpstream
) -> None:
    """The lock, the run row, the harness switch and the user's message are one write; the
    switch is in the session's log, and the turn's own stream starts with turn.started."""
    sid = (await http.post("/v2/sessions", json={"compute": None})).json()["session_id"]
    writes: list[int] = []
    write = gateway.store.db.write

    async def counting(query):
        writes.append(len(mock_upstream.requests))  # upstream calls made before this write
        return await write(query)

    gateway.store.db.write = counting  # type: ignore[method-assign]
    body = {"input": "hello", "stream": True, "harness": "openai", "model": "gpt-5"}
    async with http.stream("POST", f"/v2/sessions/{sid}/run-llm", json=body) as response:
        lines = [line async for line in response.aiter_lines()]
    streamed = [line[7:] for line in lines if line.startswith("event: ")]
    assert streamed[0] == "turn.started" and streamed[-1] == "turn.completed"
    assert "harness_switched" not in streamed
    assert writes.count(0) == 1, "the turn wrote more than once before calling the model"

    transcript = (await http.get(f"/v2/sessions/{sid}/messages")).json()["messages"]
    assert [(m["role"], m["kind"]) for m in transcript[:2]] == [
        ("event", "harness_switched"),
        ("user", "text"),
    ]
    async with http.stream("GET", f"/v2/sessions/{sid}/events?follow=false") as log:
        logged = [line[7:] async for line in log.aiter_lines() if line.startswith("event: ")]
    assert logged[:2] == ["harness_switched", "turn.started"]


async def test_a_turn_costs_two_write_transactions_its_start_and_its_end(
    http: httpx.AsyncClient, gateway: Gateway, mock_upstream: MockUpstream
) -> None:
    """The lock with the run row and the user's message; then the reply, its events and
    ledger row, the run's end, the session ready and the lock released. The reply is not
    written on its own when the turn ends right after it."""
    sid = (await http.post("/v2/sessions", json={"compute": None})).json()["session_id"]
    mock_upstream.script(Reply(text="hi there"))
    db = gateway.store.db
    writes: list[str] = []
    write = db.write

    async def counted(query):  # type: ignore[no-untyped-def]
        writes.append(getattr(query, "__qualname__", repr(query)))
        return await write(query)

    db.write = counted  # type: ignore[method-assign]
    try:
        answer = await http.post(f"/v2/sessions/{sid}/run-llm", json={"input": "hello"})
    finally:
        db.write = write  # type: ignore[method-assign]
    assert answer.json()["status"] == "completed"
    assert len(writes) == 2, writes
    messages = (await http.get(f"/v2/sessions/{sid}/messages")).json()["messages"]
    assert [m["content"] for m in messages] == ["hello", "hi there"]
    session = (await http.get(f"/v2/sessions/{sid}")).json()
    assert session["status"] == "ready"
    [run] = (await http.get(f"/v2/sessions/{sid}/runs")).json()["runs"]
    assert run["status"] == "completed"
