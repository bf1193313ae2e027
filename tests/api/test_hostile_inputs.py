"""Inputs that once crashed the server (found by schemathesis), replayed: each is now a 4xx
with the error shape, and changes nothing."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from cerver.api import create_app
from cerver.api.strict_json import INT64_MAX
from cerver.client import AsyncClient
from cerver.gateway import Gateway
from cerver.store.storable import REPLACEMENT
from cerver.testing.mock_upstream import MockUpstream, Reply
from cerver.testing.mock_upstream.script import ToolCallSpec
from tests.conftest import ADMIN_KEY, make_settings

JSON = {"Content-Type": "application/json"}
NUL_COMMAND = "printf 'a\\0b'"


@pytest.fixture
async def sid(client: AsyncClient) -> str:
    return (await client.create_session(user="u", compute={"provider": "local"}))["session_id"]


async def _messages(http: httpx.AsyncClient, sid: str) -> list[dict]:
    return (await http.get(f"/v2/sessions/{sid}/messages")).json()["messages"]


@pytest.mark.parametrize(
    ("path", "body", "where"),
    [
        ("run", b'{"code": "echo a\\u0000b"}', "code"),
        ("run", b'{"code": "echo a", "env": {"A": "x\\u0000y"}}', "env.A"),
        ("run/stream", b'{"code": "echo a\\u0000b"}', "code"),
        ("input", b'{"content": "hi", "metadata": {"n": 1180591620717411303424}}', "metadata.n"),
        ("input", b'{"content": "hi\\u0000"}', "content"),
        ("input", b'{"content": "hi", "metadata": {"x": NaN}}', "metadata.x"),
        ("input", b'{"content": "hi", "metadata": {"x": [1e999]}}', "metadata.x[0]"),
    ],
)
async def test_unstorable_json_is_400_and_stores_nothing(
    http: httpx.AsyncClient, sid: str, path: str, body: bytes, where: str
) -> None:
    response = await http.post(f"/v2/sessions/{sid}/{path}", content=body, headers=JSON)
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["code"] == "invalid_request" and where in error["detail"]
    assert error["context"]["loc"][0] == "body"
    assert await _messages(http, sid) == []
    metrics = (await http.get(f"/v2/sessions/{sid}/metrics")).json()
    assert metrics["total_exec_count"] == 0 and metrics["interaction_count"] == 0


async def test_nul_in_the_url_is_400(http: httpx.AsyncClient, sid: str) -> None:
    for url in ("/v2/sessions?user=a%00b", f"/v2/sessions/{sid}%00/messages"):
        response = await http.get(url)
        assert response.status_code == 400 and response.json()["code"] == "invalid_request"


async def test_integer_query_parameters_are_bounded(http: httpx.AsyncClient, sid: str) -> None:
    for url in (
        f"/v2/sessions/{sid}/messages?after_seq={2**70}",
        f"/v2/sessions/{sid}/messages?after_seq={INT64_MAX + 1}",
        f"/v2/sessions/{sid}/events?follow=false&after={2**70}",
    ):
        response = await http.get(url)
        assert response.status_code == 422, (url, response.text)
        assert response.json()["code"] == "validation_error"
    ok = await http.get(f"/v2/sessions/{sid}/messages?after_seq={INT64_MAX}")
    assert ok.status_code == 200 and ok.json()["messages"] == []


async def test_usage_by_session_answers(client: AsyncClient, sid: str) -> None:
    await client.append_input(sid, "hi", role="assistant", model="m", usage={"input_tokens": 3})
    usage = await client.usage("session")
    assert [(r["key"], r["input_tokens"]) for r in usage["rows"]] == [(sid, 3)]


async def test_chunked_body_over_the_limit_is_413(
    http: httpx.AsyncClient, gateway: Gateway
) -> None:
    limit = gateway.settings.max_body_bytes

    async def chunks():
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536

    response = await http.post("/v2/sessions", content=chunks(), headers=JSON)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert (await http.get("/v2/sessions")).json()["sessions"] == []


async def test_a_body_without_a_json_content_type_is_422_not_500(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/v2/sessions", content=b"\xff\x00 not json", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 422 and response.json()["code"] == "validation_error"


async def test_405_names_every_method_of_the_path(http: httpx.AsyncClient, sid: str) -> None:
    response = await http.put(f"/v2/sessions/{sid}")
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "DELETE"}
    assert response.json()["code"] == "method_not_allowed"


@pytest.mark.parametrize("compute", [{"compute_id": ""}, {"provider": ""}])
async def test_an_empty_compute_name_is_422(http: httpx.AsyncClient, compute: dict) -> None:
    sid = (await http.post("/v2/sessions", json={"compute": None})).json()["session_id"]
    for path, body in (
        ("/v2/sessions", {"compute": compute}),
        (f"/v2/sessions/{sid}/spawn", {"compute": compute}),
        (f"/v2/sessions/{sid}/compute", compute),
    ):
        response = await http.post(path, json=body)
        assert response.status_code == 422, (path, response.text)


async def test_a_tool_that_prints_nul_completes_its_turn_on_every_store(
    tmp_path: Path, database_url: str, mock_upstream: MockUpstream
) -> None:
    """PostgreSQL cannot hold a NUL: the turn failed with a 500 and left a dangling call."""
    gateway = Gateway(make_settings(tmp_path, database_url, mock_upstream))
    await gateway.start()
    try:
        transport = httpx.ASGITransport(app=create_app(gateway))
        async with AsyncClient("http://t", ADMIN_KEY, transport=transport) as client:
            sid = (await client.create_session(compute={"provider": "local"}))["session_id"]
            mock_upstream.script(
                Reply(tool_calls=[ToolCallSpec(name="bash", arguments={"command": NUL_COMMAND})]),
                Reply(text="done"),
            )
            assert (await client.run_llm(sid, "print a NUL"))["status"] == "completed"
            result = (await client.messages(sid))["messages"][2]
            assert result["kind"] == "tool_result"
            assert result["parts"][0]["output"] == f"a{REPLACEMENT}b"
    finally:
        await gateway.stop()
