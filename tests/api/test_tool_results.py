"""The app's own tools on ``run-llm`` and ``POST /v2/sessions/{id}/tool-results``, against
the mock upstream (a test double)."""

from __future__ import annotations

import httpx

from cerver.testing.mock_upstream import MockUpstream, Reply

REFUND = {
    "name": "refund",
    "description": "Refund an order.",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
}


async def _session(http: httpx.AsyncClient, harness: str = "anthropic") -> str:
    body = {"compute": {"provider": "local"}, "harness": harness}
    return (await http.post("/v2/sessions", json=body)).json()["session_id"]


async def test_a_call_of_the_apps_tool_stops_the_turn_until_the_result_arrives(
    http: httpx.AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid = await _session(http)
    mock_upstream.script(Reply(tool_calls=[{"name": "refund", "arguments": {"order_id": "9"}}]))
    stopped = (
        await http.post(
            f"/v2/sessions/{sid}/run-llm", json={"input": "Refund order 9", "tools": [REFUND]}
        )
    ).json()
    assert stopped["status"] == "requires_action"
    [call] = stopped["pending_tool_calls"]
    assert (call["name"], call["arguments"]) == ("refund", {"order_id": "9"})
    offered = [t["name"] for t in mock_upstream.requests[-1]["body"]["tools"]]
    assert offered == ["bash", "read_file", "write_file", "refund"]  # next to the sandbox tools
    run = (await http.get(f"/v2/sessions/{sid}")).json()
    assert run["status"] == "ready"

    # A result for a call that is not pending: 409, nothing written.
    wrong = await http.post(
        f"/v2/sessions/{sid}/tool-results",
        json={"results": [{"tool_call_id": "call_nope", "output": "x"}]},
    )
    assert wrong.status_code == 409 and "'call_nope' is not waiting" in wrong.json()["detail"]
    before = (await http.get(f"/v2/sessions/{sid}/messages")).json()["messages"]

    done = await http.post(
        f"/v2/sessions/{sid}/tool-results",
        json={"results": [{"tool_call_id": call["id"], "output": "refunded 12 EUR"}]},
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed"
    assert "refunded 12 EUR" in done.json()["message"]["content"]
    # The tools stay offered for the rest of the turn.
    assert [t["name"] for t in mock_upstream.requests[-1]["body"]["tools"]][-1] == "refund"
    entries = (await http.get(f"/v2/sessions/{sid}/messages")).json()["messages"]
    assert len(before) == 2
    assert [(e["role"], e["kind"]) for e in entries[2:]] == [
        ("tool", "tool_result"),
        ("assistant", "text"),
    ]
    assert entries[2]["metadata"]["source"] == "tool-results"
    again = await http.post(
        f"/v2/sessions/{sid}/tool-results",
        json={"results": [{"tool_call_id": call["id"], "output": "twice"}]},
    )
    assert again.status_code == 409


async def test_tool_names_are_checked_before_anything_runs(
    http: httpx.AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid = await _session(http)
    clash = await http.post(
        f"/v2/sessions/{sid}/run-llm",
        json={"input": "x", "tools": [{"name": "bash"}]},
    )
    assert clash.status_code == 400 and "taken by a sandbox tool" in clash.json()["detail"]
    bad_name = await http.post(
        f"/v2/sessions/{sid}/run-llm",
        json={"input": "x", "tools": [{"name": "look up"}]},
    )
    assert bad_name.status_code == 400 and "'look up' is not allowed" in bad_name.json()["detail"]
    assert (await http.get(f"/v2/sessions/{sid}/messages")).json()["messages"] == []
    assert mock_upstream.requests == []
