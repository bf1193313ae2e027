"""The run supervisor of a live gateway: reaping dead processes' runs without a restart,
draining for a shutdown."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import orjson

from cerver.api import create_app
from cerver.events import EventHub
from cerver.gateway import Gateway
from cerver.services.sessions import ComputeChoice, HarnessChoice
from cerver.store import SessionWriter
from cerver.testing.mock_upstream import MockUpstream, Reply
from cerver.types import Entry
from tests.conftest import ADMIN_KEY, make_settings


async def test_a_live_gateway_reaps_a_dead_processs_run_and_tells_its_tail(
    tmp_path: Path, sqlite_url: str, mock_upstream: MockUpstream
) -> None:
    gateway = Gateway(make_settings(tmp_path, sqlite_url, mock_upstream, run_lease_seconds=0.6))
    await gateway.start()
    try:
        account = (await gateway.auth.authenticate(f"Bearer {ADMIN_KEY}")).id
        created = await gateway.sessions.create(
            account, harness=HarnessChoice("anthropic"), compute=ComputeChoice("none")
        )
        sid = created.id
        # Another process took the session for a turn, then died: its lease runs out.
        locked = await gateway.store.sessions.try_lock(sid, "run_dead", ttl=0.3)
        assert locked is not None
        writer = SessionWriter(gateway.store.db, EventHub(), locked[0], "run_dead")
        writer.update_session(status="running")
        await writer.append(Entry(role="user", content="hi"))
        await gateway.store.runs.start("run_dead", sid, "turn", ttl=0.3)
        with gateway.hub.subscribe(sid) as live:
            event = await asyncio.wait_for(live.get(), 10)
            while event.event != "turn.completed":
                event = await asyncio.wait_for(live.get(), 10)
        assert orjson.loads(event.data)["status"] == "interrupted"
        assert (await gateway.runs.get(sid, "run_dead")).status == "interrupted"
        session = await gateway.sessions.get(account, sid)
        assert session.status == "ready" and session.lock_run_id is None
    finally:
        await gateway.stop()


async def test_drain_fails_readiness_then_interrupts_what_outlives_the_grace(
    gateway: Gateway, http: httpx.AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid = (await http.post("/v2/sessions", json={"compute": None})).json()["session_id"]
    mock_upstream.script(Reply(text=" ".join(["slow"] * 50), chunk_delay_ms=200))
    turn = asyncio.create_task(http.post(f"/v2/sessions/{sid}/run-llm", json={"input": "go"}))
    await asyncio.sleep(1.0)
    drain = asyncio.create_task(gateway.drain(grace=0.5))
    await asyncio.sleep(0)
    assert (await http.get("/readyz")).status_code == 503
    refused = await http.post(f"/v2/sessions/{sid}/run-llm", json={"input": "more"})
    assert refused.status_code == 503 and refused.json()["code"] == "shutting_down"
    await drain
    answered = (await turn).json()
    assert answered["status"] == "interrupted"
    assert answered["message"]["status"] == "incomplete"
    [run] = (await http.get(f"/v2/sessions/{sid}/runs")).json()["runs"]
    assert run["status"] == "interrupted"


async def test_drain_returns_at_once_when_nothing_runs(
    tmp_path: Path, sqlite_url: str, mock_upstream: MockUpstream
) -> None:
    gateway = Gateway(make_settings(tmp_path, sqlite_url, mock_upstream))
    await gateway.start()
    try:
        await asyncio.wait_for(gateway.drain(grace=30), 5)
        transport = httpx.ASGITransport(app=create_app(gateway))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            assert (await http.get("/readyz")).json()["status"] == "shutting_down"
    finally:
        await gateway.stop()
