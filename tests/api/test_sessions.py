"""The session routes, driven in-process through the client."""

from __future__ import annotations

import httpx
import pytest

from cerver.client import AsyncClient
from cerver.errors import NotFound, SessionClosed, UnknownPlugin


async def test_create_get_and_list(client: AsyncClient) -> None:
    created = await client.create_session(
        user="user_4f3a",
        session_name="first",
        task="refactor auth",
        harness="anthropic",
        metadata={"plan": "pro"},
    )
    assert created["session_id"].startswith("sess_")
    assert created["status"] == "ready"
    assert created["provider"] == "local" and created["sandbox_id"]
    assert created["metrics"]["engagement_label"] == "idle"
    assert created["routing"]["recommended_provider"] == "local"
    fetched = await client.get_session(created["session_id"])
    assert fetched["metadata"] == {"plan": "pro"}
    await client.create_session(user="user_8b21", compute=None)
    listed = await client.list_sessions(user="user_4f3a")
    assert [s["session_id"] for s in listed["sessions"]] == [created["session_id"]]


async def test_transcript_only_session_has_no_compute(client: AsyncClient) -> None:
    created = await client.create_session(user="u", compute=None)
    assert created["provider"] is None and created["sandbox_id"] is None
    with pytest.raises(Exception) as exc:
        await client.run(created["session_id"], "echo hi")
    assert "has no compute" in str(exc.value)


async def test_input_appends_with_gapless_seq(client: AsyncClient) -> None:
    sid = (await client.create_session(user="u", compute=None))["session_id"]
    await client.append_input(sid, "hello")
    await client.append_input(
        sid,
        "hi there",
        role="assistant",
        model="my-model",
        usage={"input_tokens": 4, "output_tokens": 2, "cost_usd": 0.001},
    )
    messages = (await client.messages(sid))["messages"]
    assert [(m["seq"], m["role"], m["content"]) for m in messages] == [
        (1, "user", "hello"),
        (2, "assistant", "hi there"),
    ]
    assert messages[1]["model"] == "my-model"
    metrics = await client.metrics(sid)
    assert metrics["interaction_count"] == 2
    assert metrics["input_tokens"] == 4 and metrics["llm_cost_usd"] == pytest.approx(0.001)
    after = (await client.messages(sid, after_seq=1))["messages"]
    assert [m["seq"] for m in after] == [2]
    tail = await client.get_session(sid, tail=1)
    assert [m["seq"] for m in tail["transcript"]] == [2]


async def test_switch_harness_records_an_entry(client: AsyncClient) -> None:
    sid = (await client.create_session(user="u", harness="anthropic", compute=None))["session_id"]
    switched = await client.switch_harness(sid, "openai", "gpt-5-mini")
    assert (switched["harness"], switched["model"]) == ("openai", "gpt-5-mini")
    [entry] = (await client.messages(sid))["messages"]
    assert entry["kind"] == "harness_switched" and entry["role"] == "event"
    assert entry["metadata"]["from"]["harness"] == "anthropic"
    assert entry["metadata"]["to"] == {"harness": "openai", "model": "gpt-5-mini"}


async def test_seed_switch_tool_alias(http: httpx.AsyncClient) -> None:
    sid = (await http.post("/v2/sessions", json={"compute": None})).json()["session_id"]
    response = await http.post(f"/v2/sessions/{sid}/switch-tool", json={"tool": "openai"})
    assert response.status_code == 200 and response.json()["harness"] == "openai"


async def test_unknown_harness_suggests_the_closest(client: AsyncClient) -> None:
    with pytest.raises(UnknownPlugin) as exc:
        await client.create_session(harness="antropic")
    assert "Did you mean 'anthropic'?" in str(exc.value)
    assert (await client.list_sessions())["sessions"] == []


async def test_unknown_compute_suggests_the_closest(http: httpx.AsyncClient) -> None:
    response = await http.post("/v2/sessions", json={"compute": {"provider": "locl"}})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "unknown_plugin" and "Did you mean 'local'?" in body["detail"]


async def test_closed_session_refuses_turns(client: AsyncClient) -> None:
    sid = (await client.create_session(user="u"))["session_id"]
    closed = await client.close_session(sid)
    assert closed["status"] == "closed" and closed["closed_at"]
    with pytest.raises(SessionClosed):
        await client.run_llm(sid, "hello")
    with pytest.raises(SessionClosed):
        await client.append_input(sid, "hello")
    assert (await client.messages(sid))["messages"] == []


async def test_delete_removes_the_session(client: AsyncClient) -> None:
    sid = (await client.create_session(user="u"))["session_id"]
    await client.delete_session(sid)
    with pytest.raises(NotFound):
        await client.get_session(sid)


async def test_harness_without_a_key_is_refused_at_creation(
    tmp_path, sqlite_url, mock_upstream
) -> None:
    from cerver.api import create_app
    from cerver.gateway import Gateway
    from tests.conftest import ADMIN_KEY, make_settings

    settings = make_settings(tmp_path, sqlite_url, mock_upstream, anthropic_api_key=None)
    gateway = Gateway(settings)
    await gateway.start()
    try:
        transport = httpx.ASGITransport(app=create_app(gateway))
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers=headers
        ) as http:
            refused = await http.post("/v2/sessions", json={"harness": "anthropic"})
            assert refused.status_code == 503
            assert refused.json()["code"] == "not_configured"
            assert "ANTHROPIC_API_KEY" in refused.json()["detail"]
            # With no harness named, the gateway picks the one it can run.
            created = await http.post("/v2/sessions", json={"compute": None})
            assert created.json()["harness"] == "openai"
    finally:
        await gateway.stop()
