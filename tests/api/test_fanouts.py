"""Fan-outs, spawn and fork through the API, against the mock upstream (a test double)."""

from __future__ import annotations

import httpx
import pytest

from cerver.client import AsyncClient
from cerver.errors import InvalidRequest, NotFound
from cerver.testing.mock_upstream import MockUpstream, Reply, ToolCallSpec


def _variants(*models: str, **extra: object) -> list[dict[str, object]]:
    return [{"harness": "anthropic", "model": m, **extra} for m in models]


async def test_fanout_on_a_session_keeps_the_winner(
    client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid = (await client.create_session(user="u1", harness="anthropic", compute=None))["session_id"]
    mock_upstream.script(
        Reply(text="red green", model="m1"),
        Reply(text="red green blue", model="m2"),
        Reply(text="red green yellow", model="m3"),
    )
    body = await client.fanout(
        "colours?", _variants("m1", "m2", "m3"), session_id=sid, judge={"type": "consensus"}
    )
    assert body["status"] == "completed" and body["parent_session_id"] == sid
    assert [v["output"] for v in body["variants"]] == [
        "red green",
        "red green blue",
        "red green yellow",
    ]
    winner = body["variants"][0]
    assert body["verdict"]["winner_variant_id"] == winner["variant_id"]
    assert body["picked_by"] == "judge"
    cost = body["cost"]
    assert [c["variant_id"] for c in cost["variants"]] == [
        v["variant_id"] for v in body["variants"]
    ]
    assert cost["total"]["output_tokens"] == sum(
        v["usage"]["output_tokens"] for v in body["variants"]
    )
    assert cost["judge"]["latency_ms"] >= 0 and cost["wall_ms"] > 0
    messages = (await client.messages(sid))["messages"]
    assert messages[-1]["seq"] == body["kept_message_id"]
    assert messages[-1]["metadata"]["provenance"]["variant_id"] == winner["variant_id"]
    children = await client.list_sessions(parent_session_id=sid)
    assert {s["session_id"] for s in children["sessions"]} == {
        v["session_id"] for v in body["variants"]
    }
    assert await client.get_fanout(body["fanout_id"]) == body


async def test_fanout_streams_variant_events_then_the_verdict(
    client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    mock_upstream.script(Reply(text="one", model="m1"), Reply(text="two", model="m2"))
    events = [
        e
        async for e in client.stream_fanout(
            "hi", _variants("m1", "m2"), user="u2", judge={"type": "fastest"}
        )
    ]
    names = [e.event for e in events]
    assert names[0] == "fanout.started" and names[-2:] == ["verdict", "fanout.completed"]
    assert names.count("variant.started") == names.count("variant.completed") == 2
    deltas = "".join(e.data["text"] for e in events if e.event == "variant.delta")
    assert sorted(deltas) == sorted("onetwo")
    final = events[-1].data
    assert final["status"] == "completed"
    parent = await client.get_session(final["parent_session_id"])
    assert parent["user"] == "u2" and parent["provider"] is None


async def test_fanout_stream_events_have_no_ids_that_look_like_session_event_ids(
    client: AsyncClient, http: httpx.AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid = (await client.create_session(compute=None))["session_id"]
    mock_upstream.script(Reply(text="first"))
    await client.run_llm(sid, "warm up")  # the session's log has events 1..n
    log_before = (await http.get(f"/v2/sessions/{sid}/events", params={"follow": "false"})).text
    mock_upstream.script(Reply(text="one", model="m1"), Reply(text="two", model="m2"))
    streamed = await http.post(
        f"/v2/sessions/{sid}/fanout",
        json={"input": "hi", "stream": True, "judge": {"type": "fastest"}}
        | {"variants": _variants("m1", "m2"), "keep": "none"},
    )
    assert streamed.headers["x-cerver-session-id"] == sid
    assert "event: fanout.started" in streamed.text and "event: fanout.completed" in streamed.text
    # No id: a fan-out's events are not in the session's log; its progress is read back with
    # GET /v2/fanouts/{id}, so nothing here can be sent back as the session's Last-Event-ID.
    assert not any(line.startswith("id:") for line in streamed.text.splitlines())
    fanout = await client.get_fanout(streamed.headers["x-cerver-fanout-id"])
    assert fanout["status"] == "completed"
    log_after = (await http.get(f"/v2/sessions/{sid}/events", params={"follow": "false"})).text
    assert log_after.startswith(log_before)
    assert "event: variant" not in log_after and "event: fanout" not in log_after


async def test_new_parent_fanout_with_a_person_picking(
    client: AsyncClient, http: httpx.AsyncClient, mock_upstream: MockUpstream
) -> None:
    mock_upstream.script(Reply(text="a", model="m1"), Reply(text="b", model="m2"))
    response = await http.post(
        "/v2/fanouts", json={"input": "hi", "variants": _variants("m1", "m2"), "keep": "none"}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["verdict"] is None and body["kept_message_id"] is None
    picked = await client.pick(body["fanout_id"], body["variants"][1]["variant_id"], "nicer")
    assert picked["picked_by"] == "human"
    assert picked["winner_variant_id"] == body["variants"][1]["variant_id"]
    messages = (await client.messages(body["parent_session_id"]))["messages"]
    assert [m["content"] for m in messages[-2:]] == ["hi", "b"]
    with pytest.raises(NotFound):
        await client.pick(body["fanout_id"], "var_nope")


async def test_tests_judge_runs_in_each_variants_own_compute(
    client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid = (
        await client.create_session(user="u1", harness="anthropic", compute={"provider": "local"})
    )["session_id"]
    await client.write_file(sid, "seed.txt", "from the parent\n")
    mock_upstream.script(
        Reply(
            tool_calls=[ToolCallSpec(name="bash", arguments={"command": "touch ok.txt"})],
            model="m1",
        ),
        Reply(text="created it", model="m1"),
        Reply(text="did nothing", model="m2"),
    )
    body = await client.fanout(
        "make ok.txt",
        _variants("m2", "m1"),
        session_id=sid,
        judge={"type": "tests", "command": "test -f seed.txt && test -f ok.txt"},
    )
    lazy, worker = body["variants"]
    assert body["winner_variant_id"] == worker["variant_id"]
    scores = {s["variant_id"]: s["score"] for s in body["verdict"]["scores"]}
    assert scores == {lazy["variant_id"]: 0.0, worker["variant_id"]: 1.0}
    assert worker["compute"] == "local"
    # Each variant had its own workspace, seeded with the parent's files.
    assert (await client.read_file(worker["session_id"], "seed.txt"))[
        "content"
    ] == "from the parent\n"
    with pytest.raises(NotFound):
        await client.read_file(sid, "ok.txt")


async def test_bad_fanouts_are_refused(client: AsyncClient, http: httpx.AsyncClient) -> None:
    sid = (await client.create_session(compute=None))["session_id"]
    too_many = {"input": "x", "variants": _variants(*[f"m{i}" for i in range(33)])}
    assert (await http.post(f"/v2/sessions/{sid}/fanout", json=too_many)).status_code == 422
    response = await http.post(
        f"/v2/sessions/{sid}/fanout",
        json={"input": "x", "variants": _variants("m1"), "judge": {"type": "llm", "model": "m1"}},
    )
    assert response.status_code == 400 and "contestant" in response.json()["detail"]
    response = await http.post(
        f"/v2/sessions/{sid}/fanout",
        json={"input": "x", "variants": [{"harness": "anthropc"}]},
    )
    assert response.status_code == 400 and response.json()["code"] == "unknown_plugin"
    assert (await http.get("/v2/fanouts/fan_missing")).status_code == 404


async def test_another_accounts_fanout_is_not_found(
    client: AsyncClient, http: httpx.AsyncClient, mock_upstream: MockUpstream
) -> None:
    body = await client.fanout("hi", _variants("m1"))
    other = await client.create_account("other")
    headers = {"Authorization": f"Bearer {other['api_key']}"}
    response = await http.get(f"/v2/fanouts/{body['fanout_id']}", headers=headers)
    assert response.status_code == 404
    cancel = await http.post(f"/v2/fanouts/{body['fanout_id']}/cancel", headers=headers)
    assert cancel.status_code == 404
    # Its owner cancelling a fan-out that already ended gets it back unchanged.
    ended = await http.post(f"/v2/fanouts/{body['fanout_id']}/cancel")
    assert ended.status_code == 200 and ended.json()["status"] == "completed"


async def test_spawn_inherits_the_transcript_on_another_harness(
    client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid = (await client.create_session(user="u9", harness="anthropic", compute=None))["session_id"]
    await client.append_input(sid, "first")
    await client.append_input(sid, "reply", role="assistant")
    child = await client.spawn(sid, harness="openai", model="gpt-5")
    assert child["parent_session_id"] == sid and child["user"] == "u9"
    assert (child["harness"], child["model"]) == ("openai", "gpt-5")
    assert child["message_count"] == 2
    assert child["metadata"]["branched_from"] == {"session_id": sid, "at_seq": 2, "kind": "spawn"}
    mock_upstream.reset()
    await client.run_llm(child["session_id"], "next")
    assert "reply" in str(mock_upstream.requests[-1]["body"]["input"])
    # The parent is untouched.
    assert (await client.get_session(sid))["message_count"] == 2


async def test_fork_branches_at_a_seq(client: AsyncClient, http: httpx.AsyncClient) -> None:
    sid = (await client.create_session(compute=None))["session_id"]
    for text in ("one", "two", "three"):
        await client.append_input(sid, text)
    child = await client.fork(sid, at_seq=2)
    messages = (await client.messages(child["session_id"]))["messages"]
    assert [m["content"] for m in messages] == ["one", "two"]
    assert child["harness"] == (await client.get_session(sid))["harness"]
    with pytest.raises(InvalidRequest, match="at_seq=9"):
        await client.fork(sid, at_seq=9)
    listed = await client.list_sessions(parent_session_id=sid)
    assert [s["session_id"] for s in listed["sessions"]] == [child["session_id"]]
