"""Runs as a resource: list, read, cancel mid-stream and mid-tool, and what a cancel leaves."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import orjson

from cerver.client import AsyncClient
from cerver.gateway import Gateway
from cerver.testing.mock_upstream import MockUpstream, Reply, ToolCallSpec

WORDS = " ".join(f"word{i}" for i in range(40))


async def _session(http: httpx.AsyncClient, compute: dict | None = None) -> str:
    response = await http.post("/v2/sessions", json={"harness": "anthropic", "compute": compute})
    return response.json()["session_id"]


async def _until(gateway: Gateway, sid: str, event: str, count: int = 1) -> str:
    """Wait for ``count`` live ``event`` events of session ``sid``; returns the run id."""
    seen, run_id = 0, ""
    with gateway.hub.subscribe(sid) as live:
        while seen < count:
            stored = await asyncio.wait_for(live.get(), 20)
            if stored.event == "turn.started":
                run_id = orjson.loads(stored.data)["run_id"]
            seen += stored.event == event
    return run_id


def _processes_running(marker: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(int(pid))
    return found


async def test_cancel_mid_stream_keeps_the_partial_text_and_frees_the_session(
    http: httpx.AsyncClient, gateway: Gateway, mock_upstream: MockUpstream
) -> None:
    sid = await _session(http)
    mock_upstream.script(Reply(text=WORDS, chunk_delay_ms=100), Reply(text="next answer"))
    watch = asyncio.create_task(_until(gateway, sid, "text_delta", count=3))
    await asyncio.sleep(0)
    turn = asyncio.create_task(http.post(f"/v2/sessions/{sid}/run-llm", json={"input": "go"}))
    run_id = await watch

    cancelled = await http.post(f"/v2/sessions/{sid}/runs/{run_id}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["cancel_requested_at"]
    answered = (await turn).json()
    assert answered["status"] == "cancelled"
    partial = answered["message"]
    assert partial["status"] == "cancelled" and WORDS.startswith(partial["content"])
    assert 0 < len(partial["content"]) < len(WORDS)

    # The next turn starts at once: the session is not busy.
    following = await http.post(
        f"/v2/sessions/{sid}/run-llm", json={"input": "again", "multitask": "reject"}
    )
    assert following.status_code == 200 and following.json()["status"] == "completed"
    messages = (await http.get(f"/v2/sessions/{sid}/messages")).json()["messages"]
    assert [(m["role"], m["status"]) for m in messages] == [
        ("user", "complete"),
        ("assistant", "cancelled"),
        ("user", "complete"),
        ("assistant", "complete"),
    ]
    events = (await http.get(f"/v2/sessions/{sid}/events", params={"follow": "false"})).text
    assert '"status":"cancelled"' in events


async def test_cancel_mid_tool_kills_the_command_and_gives_the_call_a_result(
    http: httpx.AsyncClient, gateway: Gateway, mock_upstream: MockUpstream
) -> None:
    sid = await _session(http, {"provider": "local"})
    marker = "30.4217"  # an argument no other process on the machine has
    mock_upstream.script(
        Reply(tool_calls=[ToolCallSpec(name="bash", arguments={"command": f"sleep {marker}"})]),
        Reply(text="next answer"),
    )
    watch = asyncio.create_task(_until(gateway, sid, "tool_call"))
    await asyncio.sleep(0)
    turn = asyncio.create_task(http.post(f"/v2/sessions/{sid}/run-llm", json={"input": "go"}))
    run_id = await watch
    for _ in range(400):  # a loaded machine may take seconds to start the sandbox
        if _processes_running(marker):
            break
        await asyncio.sleep(0.05)
    assert _processes_running(marker), "the tool's command never started"

    cancelled = await http.post(f"/v2/sessions/{sid}/runs/{run_id}/cancel")
    assert cancelled.json()["status"] == "cancelled"
    assert (await turn).json()["status"] == "cancelled"
    for _ in range(100):  # SIGKILL was sent to its group; the kernel takes a moment to reap
        if not _processes_running(marker):
            break
        await asyncio.sleep(0.05)
    assert _processes_running(marker) == []
    messages = (await http.get(f"/v2/sessions/{sid}/messages")).json()["messages"]
    call, result = messages[1], messages[2]
    assert call["kind"] == "tool_call" and result["kind"] == "tool_result"
    assert result["parts"][0]["tool_call_id"] == call["parts"][0]["id"]
    assert result["parts"][0]["is_error"] and result["status"] == "cancelled"

    following = await http.post(
        f"/v2/sessions/{sid}/run-llm", json={"input": "again", "multitask": "reject"}
    )
    assert following.json()["status"] == "completed"


async def test_runs_are_listed_read_and_scoped_to_their_session(
    http: httpx.AsyncClient, client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid, other = await _session(http), await _session(http)
    mock_upstream.script(Reply(text="one"))
    run_id = (await http.post(f"/v2/sessions/{sid}/run-llm", json={"input": "hi"})).json()["run_id"]
    [listed] = (await http.get(f"/v2/sessions/{sid}/runs")).json()["runs"]
    assert listed["run_id"] == run_id and listed["status"] == "completed"
    assert listed["lease_expires_at"] is None and listed["ended_at"]
    assert (await http.get(f"/v2/sessions/{sid}/runs", params={"status": "running"})).json() == {
        "runs": []
    }
    assert (await http.get(f"/v2/sessions/{sid}/runs/{run_id}")).json()["harness"] == "anthropic"
    # Another session's path does not reach the run (404, as for a missing one).
    assert (await http.get(f"/v2/sessions/{other}/runs/{run_id}")).status_code == 404
    assert (await http.post(f"/v2/sessions/{other}/runs/{run_id}/cancel")).status_code == 404
    # Cancelling a run that already ended answers with it unchanged.
    again = await http.post(f"/v2/sessions/{sid}/runs/{run_id}/cancel")
    assert again.status_code == 200 and again.json()["status"] == "completed"
    assert again.json()["cancel_requested_at"] is None
    assert (await client.list_runs(sid, status="completed"))["runs"][0]["run_id"] == run_id
    assert (await client.get_run(sid, run_id))["status"] == "completed"
    assert (await client.cancel_run(sid, run_id))["status"] == "completed"
